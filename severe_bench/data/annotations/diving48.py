"""Diving48 V2 official JSON lists.

Roles: ``train`` / ``test`` (``Diving48_V2_train.json`` / ``Diving48_V2_test.json``: a list of
``{"vid_name", "label", "start_frame", "end_frame"}``); optional ``classes`` (``Diving48_vocab.json``: a list
of 4-part names such as ``["Back", "15som", "05Twis", "FREE"]``, joined with spaces).
Video = ``<vid_name>.mp4`` under ``video_dir`` (``video_ext`` overrides). Meta: start/end frame.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import AnnotationError
from ..sample import Sample
from .base import CLASS_ROLES, Annotations, existing, optional_role, role_path, video_path
from .ssv2 import load_json

KEYS = ("vid_name", "label")


def required(dataset: dict, split: str) -> list[str]:
    out = [role_path(dataset, split)]
    classes = optional_role(dataset, *CLASS_ROLES)
    return out + ([classes] if classes else [])


def read_vocab(path: Path) -> list[str]:
    vocab = load_json(path)
    if not isinstance(vocab, list):
        raise AnnotationError(path, None, "expected a list of class names")
    return [" ".join(str(p) for p in v) if isinstance(v, list) else str(v) for v in vocab]


def read(root: Path, dataset: dict, split: str) -> Annotations:
    list_file = existing(root, role_path(dataset, split), dataset)
    files = [list_file]
    names = None
    classes_rel = optional_role(dataset, *CLASS_ROLES)
    if classes_rel:
        classes_file = existing(root, classes_rel, dataset)
        names = read_vocab(classes_file)
        files.append(classes_file)
    entries = load_json(list_file)
    if not isinstance(entries, list):
        raise AnnotationError(list_file, None, "expected a list of {vid_name, label, start_frame, end_frame}")
    samples = []
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or any(k not in entry for k in KEYS):
            raise AnnotationError(list_file, None, f"entry #{n} lacks 'vid_name' / 'label': {str(entry)[:80]}")
        try:
            label = int(entry["label"])
        except (TypeError, ValueError):
            raise AnnotationError(list_file, None, f"entry #{n}: label {entry['label']!r} is not an integer") from None
        if label < 0 or (names is not None and label >= len(names)):
            raise AnnotationError(list_file, None, f"entry #{n}: label {label} is out of range")
        vid = str(entry["vid_name"])
        meta = {k: int(entry[k]) for k in ("start_frame", "end_frame") if entry.get(k) is not None}
        samples.append(Sample(video=video_path(dataset, vid, ".mp4"), label=label, id=vid, meta=meta))
    return Annotations(samples=samples, class_names=names, files=files)
