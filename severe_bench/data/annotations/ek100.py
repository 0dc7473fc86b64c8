"""EPIC-KITCHENS-100 action segments, verb classification.

Roles: ``train`` / ``test`` (``EPIC_100_train.csv`` / ``EPIC_100_validation.csv``, columns
``narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,
stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes``); optional ``classes``
(``EPIC_100_verb_classes.csv``: ``id,key,instances,category``) gives the 97 verb names.
One sample per segment: label = ``verb_class``; video = ``<video_dir>/<participant>/videos/<video_id>.MP4``
(``video_ext`` overrides); meta: start/stop frame and timestamp, narration, verb, noun class.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ...errors import AnnotationError
from ..sample import Sample
from .base import CLASS_ROLES, Annotations, existing, optional_role, parse_int, read_text, role_path, video_path

COLUMNS = ("narration_id", "participant_id", "video_id", "start_frame", "stop_frame", "verb_class")


def required(dataset: dict, split: str) -> list[str]:
    out = [role_path(dataset, split)]
    classes = optional_role(dataset, *CLASS_ROLES)
    return out + ([classes] if classes else [])


def _rows(path: Path, columns):
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    header = reader.fieldnames or []
    lacking = [c for c in columns if c not in header]
    if lacking:
        raise AnnotationError(path, 1, f"header lacks column(s) {', '.join(lacking)} (got {', '.join(header)})")
    for row in reader:
        if None in row or any(row.get(c) is None for c in columns):
            raise AnnotationError(path, reader.line_num, f"row does not have the {len(header)} header columns")
        yield reader.line_num, row


def read_verb_classes(path: Path) -> list[str]:
    by_id = {}
    for lineno, row in _rows(path, ("id", "key")):
        by_id[parse_int(row["id"], path, lineno, "id")] = row["key"]
    if sorted(by_id) != list(range(len(by_id))):
        raise AnnotationError(path, None, "verb ids must be 0..N-1, each once")
    return [by_id[i] for i in range(len(by_id))]


def read(root: Path, dataset: dict, split: str) -> Annotations:
    list_file = existing(root, role_path(dataset, split), dataset)
    files = [list_file]
    names = None
    classes_rel = optional_role(dataset, *CLASS_ROLES)
    if classes_rel:
        classes_file = existing(root, classes_rel, dataset)
        names = read_verb_classes(classes_file)
        files.append(classes_file)
    samples = []
    for lineno, row in _rows(list_file, COLUMNS):
        label = parse_int(row["verb_class"], list_file, lineno, "verb_class")
        if label < 0 or (names is not None and label >= len(names)):
            raise AnnotationError(list_file, lineno, f"verb_class {label} is out of range")
        start = parse_int(row["start_frame"], list_file, lineno, "start_frame")
        stop = parse_int(row["stop_frame"], list_file, lineno, "stop_frame")
        if stop < start:
            raise AnnotationError(list_file, lineno, f"stop_frame {stop} is before start_frame {start}")
        meta = {"start_frame": start, "stop_frame": stop}
        for key in ("start_timestamp", "stop_timestamp", "narration", "verb"):
            if row.get(key) is not None:
                meta[key] = row[key]
        if (row.get("noun_class") or "").strip().lstrip("-").isdigit():
            meta["noun_class"] = int(row["noun_class"])
        rel = f"{row['participant_id']}/videos/{row['video_id']}"
        samples.append(Sample(video=video_path(dataset, rel, ".MP4"), label=label, id=row["narration_id"], meta=meta))
    return Annotations(samples=samples, class_names=names, files=files)
