"""FineGym v1.0 element lists (Gym99 / Gym288).

Roles: ``train`` / ``test`` (``gym99_train.txt`` / ``gym99_val.txt``, or the gym288 files), each line
``<ytid>_E_<event start>_<event end>_A_<sub start>_<sub end> <label>``; some copies append ``.avi`` (or
another video extension) to the clip name, which is dropped. Optional ``classes``
(``gym99_categories.txt``: ``Clabel: 0; set: 1; Glabel: 1; (VT) round-off, ...``) gives class names.
Video = ``<clip>.mp4`` under ``video_dir`` (``video_ext`` overrides). Meta: youtube id, event and
sub-action timestamps (event in seconds of the YouTube video, sub-action in seconds of the event).
FX-S1 / UB-S1 / Vault / Floor are label filters of these lists, applied by the registry.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import AnnotationError
from ..sample import Sample
from .base import (
    Annotations, check_label, names_by_index, numbered_lines, parse_int, read_split_and_classes,
    split_and_optional_classes, strip_video_ext, video_path,
)

CLIP_RE = re.compile(r"^(?P<ytid>.+)_E_(?P<es>\d+)_(?P<ee>\d+)_A_(?P<as>\d+)_(?P<ae>\d+)$")
CATEGORY_RE = re.compile(
    r"^Clabel:\s*(?P<c>\d+)\s*;\s*set:\s*(?P<s>\d+)\s*;\s*Glabel:\s*(?P<g>\d+)\s*;\s*(?P<name>.*)$"
)


required = split_and_optional_classes


def read_categories(path: Path) -> list[str]:
    by_label: dict[int, str] = {}
    for lineno, text in numbered_lines(path):
        m = CATEGORY_RE.match(text)
        if not m:
            raise AnnotationError(path, lineno, f"expected 'Clabel: N; set: N; Glabel: N; <name>', got {text!r}")
        by_label[int(m["c"])] = m["name"].strip()
    return names_by_index(by_label, path, "Clabel values")


def read(root: Path, dataset: dict, split: str) -> Annotations:
    list_file, names, files = read_split_and_classes(root, dataset, split, read_categories)
    samples = []
    for lineno, text in numbered_lines(list_file):
        fields = text.split()
        if len(fields) != 2:
            raise AnnotationError(list_file, lineno, f"expected '<clip name> <label>', got {text!r}")
        clip = strip_video_ext(fields[0])
        label = parse_int(fields[1], list_file, lineno, "label")
        m = CLIP_RE.match(clip)
        if not m:
            raise AnnotationError(
                list_file, lineno, f"clip name {clip!r} is not '<ytid>_E_<start>_<end>_A_<start>_<end>'"
            )
        check_label(label, names, list_file, lineno)
        meta = {
            "youtube_id": m["ytid"],
            "event": (int(m["es"]), int(m["ee"])),
            "action": (int(m["as"]), int(m["ae"])),
        }
        samples.append(Sample(video=video_path(dataset, clip, ".mp4", where=(list_file, lineno)), label=label, id=clip, meta=meta))
    return Annotations(samples=samples, class_names=names, files=files)
