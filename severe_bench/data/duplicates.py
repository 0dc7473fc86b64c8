"""Duplicate entries in an annotation list: a line listed twice would train on, or score, one video twice.

An entry is a duplicate when another entry of the same split has the same video, id, label and metadata (so
Charades clips or EPIC segments of one video, which differ in their spans, are not). Duplicates are removed,
named in a warning on standard error and recorded in ``Annotations.duplicates``.
"""

from __future__ import annotations

import sys
from dataclasses import replace


def _frozen(value):
    """A hashable, exact form of a label or metadata value (arrays compared element by element)."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _frozen(value.tolist())
    return value


def drop_duplicates(ann, split: str, where=None):
    """``ann`` without repeated entries; those removed are named in a warning about ``where`` (the list)."""
    seen: set = set()
    keep, dropped = [], []
    for s in ann.samples:
        key = (s.video, s.id, _frozen(s.label), _frozen(s.meta))
        if key in seen:
            dropped.append(s)
            continue
        seen.add(key)
        keep.append(s)
    if not dropped:
        return ann
    where = where or (ann.files[0] if ann.files else "the annotation list")
    shown = ", ".join(repr(s.id or s.video) for s in dropped[:5]) + (" ..." if len(dropped) > 5 else "")
    print(f"warning: {where}: {len(dropped)} duplicate {split} entr{'y' if len(dropped) == 1 else 'ies'} removed "
          f"(listed more than once: {shown})", file=sys.stderr)
    return replace(ann, samples=keep, duplicates=[s.id or s.video for s in dropped])
