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
from .base import (
    Annotations, check_label, names_by_index, parse_int, read_split_and_classes, read_text, split_and_optional_classes,
    video_path,
)

COLUMNS = ("narration_id", "participant_id", "video_id", "start_frame", "stop_frame", "verb_class")


required = split_and_optional_classes


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
    return names_by_index(by_id, path, "verb ids")


def read(root: Path, dataset: dict, split: str) -> Annotations:
    list_file, names, files = read_split_and_classes(root, dataset, split, read_verb_classes)
    samples = []
    for lineno, row in _rows(list_file, COLUMNS):
        label = parse_int(row["verb_class"], list_file, lineno, "verb_class")
        check_label(label, names, list_file, lineno, "verb_class")
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
        samples.append(Sample(video=video_path(dataset, rel, ".MP4", where=(list_file, lineno)), label=label, id=row["narration_id"], meta=meta))
    return Annotations(samples=samples, class_names=names, files=files)
