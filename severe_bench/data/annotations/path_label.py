"""Generic video lists: one video per line, the class index last.

Accepted line shapes (``;`` or whitespace between the columns; paths are relative to ``video_dir``):
- ``path;label`` / ``path label`` (mmaction2 video lists, the SynAPT Mini-SSv2 / IkeaFA / UAV-Human lists);
- ``path num_frames label`` (TSN / mmaction2 raw-frame lists);
- ``path start_frame end_frame label`` (IBM action-recognition-pytorch lists, used by SynAPT).
With whitespace separators a path may itself contain spaces; up to two integer columns right before the
label are read as frame numbers. Optional ``classes`` / ``class_index`` file: one class name per line, or
``<index> <name>`` lines. ``video_ext``, when set, replaces or adds the extension of every path.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import AnnotationError
from ..sample import Sample
from .base import (
    Annotations, check_label, numbered_lines, read_indexed_classes, read_split_and_classes, split_and_optional_classes,
    strip_video_ext, video_path,
)

WS_LINE = re.compile(r"^(?P<path>.+?)(?:\s+(?P<a>\d+))?(?:\s+(?P<b>\d+))?\s+(?P<label>-?\d+)$")


required = split_and_optional_classes


def parse_line(text: str, path: Path, lineno: int) -> tuple[str, int, dict]:
    if ";" in text:
        cols = [c.strip() for c in text.split(";")]
        if len(cols) not in (2, 3, 4) or not cols[0]:
            raise AnnotationError(
                path, lineno, f"expected 'path;label' (or path;frames;label, path;start;end;label), got {text!r}"
            )
        nums = cols[1:]
    else:
        m = WS_LINE.match(text)
        if not m:
            raise AnnotationError(path, lineno, f"expected 'path label' with an integer label, got {text!r}")
        cols = [m["path"]] + [g for g in (m["a"], m["b"]) if g is not None] + [m["label"]]
        nums = cols[1:]
    try:
        values = [int(v) for v in nums]
    except ValueError:
        raise AnnotationError(path, lineno, f"label / frame columns must be integers, got {nums}") from None
    label = values[-1]  # its range is checked by the caller (``check_label``)
    meta = {}
    if len(values) == 2:
        meta["num_frames"] = values[0]
    elif len(values) == 3:
        meta["start_frame"], meta["end_frame"] = values[0], values[1]
    return cols[0], label, meta


def read(root: Path, dataset: dict, split: str) -> Annotations:
    list_file, names, files = read_split_and_classes(root, dataset, split, read_indexed_classes)
    samples = []
    for lineno, text in numbered_lines(list_file):
        rel, label, meta = parse_line(text, list_file, lineno)
        check_label(label, names, list_file, lineno)
        rel = rel.replace("\\", "/")
        vid = strip_video_ext(rel)
        samples.append(Sample(video=video_path(dataset, rel, where=(list_file, lineno)), label=label, id=vid, meta=meta))
    return Annotations(samples=samples, class_names=names, files=files)
