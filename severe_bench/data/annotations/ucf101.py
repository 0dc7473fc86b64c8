"""UCF101 official split lists (``ucfTrainTestlist/``).

Roles: ``class_index`` (``classInd.txt``: ``1 ApplyEyeMakeup``), ``train`` (``trainlist0N.txt``:
``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``), ``test`` (``testlist0N.txt``: path only).
Label = 0-based position of the video's class folder in classInd, matched case-insensitively (the official
lists write ``HandstandPushups/v_HandStandPushups_g08_c01.avi``). A numeric label in a train list must agree
with the folder. The video path is the list's path under ``video_dir``, kept verbatim.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from ...errors import AnnotationError
from ..sample import Sample
from .base import Annotations, existing, numbered_lines, parse_int, read_indexed_classes, role_path, video_path


def required(dataset: dict, split: str) -> list[str]:
    return [role_path(dataset, "class_index"), role_path(dataset, split)]


def class_lookup(names: list[str]) -> dict[str, int]:
    return {name.lower(): i for i, name in enumerate(names)}


def read(root: Path, dataset: dict, split: str) -> Annotations:
    class_file = existing(root, role_path(dataset, "class_index"), dataset)
    list_file = existing(root, role_path(dataset, split), dataset)
    names = read_indexed_classes(class_file)
    lookup = class_lookup(names)
    samples = []
    for lineno, text in numbered_lines(list_file):
        fields = text.split()
        if len(fields) > 2:
            raise AnnotationError(list_file, lineno, f"expected '<Class>/<video>.avi [label]', got {text!r}")
        rel = fields[0].replace("\\", "/")
        if "/" not in rel:
            raise AnnotationError(list_file, lineno, f"video {rel!r} has no class folder ('<Class>/<video>.avi')")
        folder = rel.split("/", 1)[0]
        if folder.lower() not in lookup:
            raise AnnotationError(list_file, lineno, f"class {folder!r} is not in {class_file.name}")
        label = lookup[folder.lower()]
        if len(fields) == 2:
            given = parse_int(fields[1], list_file, lineno, "label")
            if given - 1 != label:
                raise AnnotationError(
                    list_file, lineno,
                    f"label {given} disagrees with class folder {folder!r} (index {label + 1} in {class_file.name})",
                )
        stem = posixpath.splitext(posixpath.basename(rel))[0]
        samples.append(Sample(video=video_path(dataset, rel, where=(list_file, lineno)), label=label, id=stem, meta={"class_name": names[label]}))
    return Annotations(samples=samples, class_names=names, files=[class_file, list_file])
