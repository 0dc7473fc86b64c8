"""Official annotation-format readers and the dispatcher the task registry calls.

``read_annotations(fmt, root, dataset, split)`` parses the dataset's own files (PROTOCOL.md §2) into
``Annotations(samples, class_names, files, skipped)``; ``required_files(fmt, dataset, split)`` names the
root-relative annotation files (or folders) a split needs, for ``severe data check``. Label filters
(FX-S1 etc.) and train subsets are applied by the registry, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...errors import ConfigError
from . import charades, diving48, ek100, finegym, hmdb51, ntu60, path_label, ssv2, ucf101, ucfrep
from .base import Annotations, confined


@dataclass(frozen=True)
class Format:
    name: str
    read: Callable[[Path, dict, str], Annotations]
    required: Callable[[dict, str], list[str]]
    doc: str


def _format(name: str, module) -> Format:
    return Format(name=name, read=module.read, required=module.required, doc=(module.__doc__ or "").strip())


FORMATS: dict[str, Format] = {
    "ucf101": _format("ucf101", ucf101),
    "ssv2": _format("ssv2", ssv2),
    "finegym": _format("finegym", finegym),
    "ucfrep": _format("ucfrep", ucfrep),
    "charades": _format("charades", charades),
    "hmdb51": _format("hmdb51", hmdb51),
    "diving48": _format("diving48", diving48),
    "ntu60": _format("ntu60", ntu60),
    "ek100_verb": _format("ek100_verb", ek100),
    "path_label": _format("path_label", path_label),
}


def get_format(fmt: str) -> Format:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown annotation format {fmt!r}; known formats: {', '.join(sorted(FORMATS))}")
    return FORMATS[fmt]


def read_annotations(fmt: str, root: Path, dataset: dict, split: str) -> Annotations:
    """Samples of ``split`` (a role in ``dataset['files']``, ``train`` or ``test``) with root-relative videos.

    Every reader refuses a listed path that leaves the root at its file:line; this last check holds for any
    format (a video path built from a file name, a folder listing)."""
    ann = get_format(fmt).read(Path(root), dataset, split)
    for s in ann.samples:
        confined(s.video, (ann.files[-1] if ann.files else Path(root), None, f"video of sample {s.id!r}"))
    return ann


def required_files(fmt: str, dataset: dict, split: str) -> list[str]:
    """Root-relative annotation files / folders ``split`` needs (optional ones only when configured)."""
    return get_format(fmt).required(dataset, split)


__all__ = ["Annotations", "FORMATS", "Format", "get_format", "read_annotations", "required_files"]
