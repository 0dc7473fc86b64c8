"""Charades v1 multi-label annotations.

Roles: ``classes`` (``Charades_v1_classes.txt``: ``c000 Holding some clothes``), ``train`` / ``test``
(``Charades_v1_train.csv`` / ``Charades_v1_test.csv``, columns ``id,subject,scene,quality,relevance,
verified,script,objects,descriptions,actions,length``; quoted fields may hold commas and newlines;
``actions`` is ``c092 11.90 21.20;c147 0.00 12.60`` or empty). Label = sorted tuple of the unique class
indices (position of the code in the classes file); meta keeps the ``segments`` ``(class, start s, end s)``
and the video ``length``. Video = ``<id>.mp4`` under ``video_dir`` (``video_ext`` overrides).

A split file may instead be a PySlowFast frame list (space separated, header
``original_vido_id video_id frame_id path labels``, labels like ``"12,45"`` or ``""``), for the
``Charades_v1_rgb`` frame folders; its rows are aggregated per video (``read_frame_list``). The format is
detected from the header line. Either way ``meta["segments"]`` gives the clip-level training targets
(``data/clip_labels.py``).
"""

from __future__ import annotations

import csv
import io
import posixpath
from pathlib import Path

from ...errors import AnnotationError, ConfigError
from ..clip_labels import segments_from_frame_labels
from ..sample import Sample
from .base import (
    CLASS_ROLES, Annotations, confined, existing, numbered_lines, optional_role, parse_int, read_text, role_path,
    video_path,
)

FRAME_LIST_HEADER = ("original_vido_id", "video_id", "frame_id", "path", "labels")
CSV_REQUIRED = ("id", "actions")


def classes_role(dataset: dict) -> str:
    return optional_role(dataset, *CLASS_ROLES) or role_path(dataset, "classes")


def required(dataset: dict, split: str) -> list[str]:
    return [classes_role(dataset), role_path(dataset, split)]


def read_classes(path: Path) -> tuple[list[str], dict[str, int]]:
    codes, names = [], []
    for lineno, text in numbered_lines(path):
        parts = text.split(None, 1)
        if len(parts) != 2 or not (parts[0][:1] == "c" and parts[0][1:].isdigit()):
            raise AnnotationError(path, lineno, f"expected 'c<NNN> <class name>', got {text!r}")
        if parts[0] in codes:
            raise AnnotationError(path, lineno, f"class {parts[0]} appears twice")
        codes.append(parts[0])
        names.append(parts[1].strip())
    if not codes:
        raise AnnotationError(path, None, "no classes in the file")
    return names, {code: i for i, code in enumerate(codes)}


def parse_actions(text: str, codes: dict[str, int], path: Path, lineno: int) -> list[tuple[int, float, float]]:
    segments = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        fields = part.split()
        if len(fields) != 3:
            raise AnnotationError(path, lineno, f"action {part!r} is not 'c<NNN> <start> <end>'")
        code, start, end = fields
        if code not in codes:
            raise AnnotationError(path, lineno, f"class {code!r} is not in the classes file")
        try:
            segments.append((codes[code], float(start), float(end)))
        except ValueError:
            raise AnnotationError(path, lineno, f"action {part!r}: start/end are not numbers") from None
    return segments


def read_video_csv(path: Path, text: str, codes: dict[str, int], dataset: dict) -> list[Sample]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    lacking = [c for c in CSV_REQUIRED if c not in header]
    if lacking:
        raise AnnotationError(path, 1, f"header lacks column(s) {', '.join(lacking)} (got {', '.join(header)})")
    samples = []
    for row in reader:
        lineno = reader.line_num
        if None in row:
            raise AnnotationError(path, lineno, f"row has more fields than the header ({len(header)})")
        vid = (row.get("id") or "").strip()
        if not vid:
            if not any((v or "").strip() for v in row.values()):
                continue  # blank line
            raise AnnotationError(path, lineno, "empty video id")
        if row.get("actions") is None:
            raise AnnotationError(path, lineno, "row has fewer fields than the header")
        segments = parse_actions(row["actions"], codes, path, lineno)
        label = tuple(sorted({c for c, _, _ in segments}))
        meta = {"segments": segments}
        if (row.get("length") or "").strip():
            try:
                meta["length"] = float(row["length"])
            except ValueError:
                raise AnnotationError(path, lineno, f"length {row['length']!r} is not a number") from None
        samples.append(Sample(video=video_path(dataset, vid, ".mp4", where=(path, lineno)), label=label, id=vid, meta=meta))
    return samples


def read_frame_list(path: Path, num_classes: int, dataset: dict) -> list[Sample]:
    """PySlowFast ``frame_lists/{train,val}.csv``: one row per frame, aggregated to one sample per video.

    The video is its frame folder (``frames_dir``, default ``video_dir``, joined with the folder of the
    ``path`` column); ``dataset.frame_fps`` (24 for ``Charades_v1_rgb``) times the frames. The label is the
    union of the frame labels (video level, as PySlowFast tests); ``meta["segments"]`` holds each run of
    frames carrying a class in seconds, which gives the clip-level training targets.
    """
    fps = dataset.get("frame_fps")
    if not fps:
        raise ConfigError(f"dataset {dataset.get('name', '?')!r}: a PySlowFast frame list needs dataset.frame_fps "
                          "(24 for Charades_v1_rgb)")
    fps = float(fps)
    base = str(dataset.get("frames_dir") or dataset.get("video_dir") or "").strip("/")
    videos: dict[str, dict] = {}
    for lineno, text in numbered_lines(path):
        if text.split()[0] == FRAME_LIST_HEADER[0]:  # the header
            continue
        row = text.split()
        if len(row) == 4:  # an unquoted empty labels column
            row.append("")
        if len(row) != 5:
            raise AnnotationError(
                path, lineno, f"expected 5 space-separated columns {FRAME_LIST_HEADER}, got {len(row)}"
            )
        vid, _, _, frame_path, labels = row
        labels = labels.replace('"', "").strip()
        idx = {parse_int(x, path, lineno, "label") for x in labels.split(",") if x.strip()} if labels else set()
        bad = [i for i in idx if not 0 <= i < num_classes]
        if bad:
            raise AnnotationError(path, lineno, f"label {bad[0]} is out of range 0..{num_classes - 1}")
        entry = videos.get(vid)
        if entry is None:
            folder = posixpath.dirname(frame_path.replace("\\", "/"))
            confined(folder, (path, lineno), "its frame folder")
            entry = videos[vid] = {"frames": [], "folder": confined(posixpath.join(base, folder) if base else folder,
                                                                   (path, lineno))}
        entry["frames"].append(tuple(sorted(idx)))
    return [
        Sample(
            video=e["folder"],
            label=tuple(sorted({c for f in e["frames"] for c in f})),
            id=vid,
            meta={"segments": segments_from_frame_labels(e["frames"], fps), "num_frames": len(e["frames"]),
                  "frame_fps": fps, "length": len(e["frames"]) / fps},
        )
        for vid, e in videos.items()
    ]


def read(root: Path, dataset: dict, split: str) -> Annotations:
    classes_file = existing(root, classes_role(dataset), dataset)
    list_file = existing(root, role_path(dataset, split), dataset)
    names, codes = read_classes(classes_file)
    text = read_text(list_file)
    first = text.lstrip().split("\n", 1)[0].split()
    if first[:1] == [FRAME_LIST_HEADER[0]]:
        samples = read_frame_list(list_file, len(names), dataset)
    else:
        samples = read_video_csv(list_file, text, codes, dataset)
    return Annotations(samples=samples, class_names=names, files=[classes_file, list_file])
