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
from .base import Annotations, check_label, read_split_and_classes, split_and_optional_classes, video_path
from .ssv2 import load_json

KEYS = ("vid_name", "label")


required = split_and_optional_classes


def read_vocab(path: Path) -> list[str]:
    vocab = load_json(path)
    if not isinstance(vocab, list):
        raise AnnotationError(path, None, "expected a list of class names")
    return [" ".join(str(p) for p in v) if isinstance(v, list) else str(v) for v in vocab]


def read(root: Path, dataset: dict, split: str) -> Annotations:
    list_file, names, files = read_split_and_classes(root, dataset, split, read_vocab)
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
        check_label(label, names, list_file, None, f"entry #{n}: label")
        vid = str(entry["vid_name"])
        meta = {k: int(entry[k]) for k in ("start_frame", "end_frame") if entry.get(k) is not None}
        samples.append(Sample(video=video_path(dataset, vid, ".mp4", where=(list_file, None, f"entry #{n}")), label=label, id=vid, meta=meta))
    return Annotations(samples=samples, class_names=names, files=files)
