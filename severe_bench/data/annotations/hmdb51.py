"""HMDB51 official splits (``testTrainMulti_7030_splits/``).

Roles: ``splits`` = the folder of ``<class>_test_split<N>.txt`` files, lines ``<video>.avi <0|1|2>``
(1 = train, 2 = test, 0 = unused); ``split_id`` (in ``files`` or in ``dataset``) picks N (default 1).
Class index = position of the class in the sorted class names (as the SEVERE reference code does).
Video = ``<video_dir>/<class>/<video>.avi``.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import AnnotationError, ConfigError
from ..sample import Sample
from .base import Annotations, existing, files_map, numbered_lines, role_path, strip_video_ext, video_path

SPLIT_CODE = {"train": "1", "test": "2"}


def split_id(dataset: dict) -> int:
    value = files_map(dataset).get("split_id", dataset.get("split_id", 1))
    try:
        value = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"hmdb51: split_id must be 1, 2 or 3, got {value!r}") from None
    if value not in (1, 2, 3):
        raise ConfigError(f"hmdb51: split_id must be 1, 2 or 3, got {value}")
    return value


def required(dataset: dict, split: str) -> list[str]:
    return [role_path(dataset, "splits")]


def read(root: Path, dataset: dict, split: str) -> Annotations:
    if split not in SPLIT_CODE:
        raise ConfigError(f"hmdb51: split must be one of {sorted(SPLIT_CODE)}, got {split!r}")
    folder = existing(root, role_path(dataset, "splits"), dataset, folder=True)
    n = split_id(dataset)
    suffix = f"_test_split{n}.txt"
    split_files = {p.name[: -len(suffix)]: p for p in folder.iterdir() if p.is_file() and p.name.endswith(suffix)}
    if not split_files:
        raise AnnotationError(folder, None, f"no '<class>{suffix}' files in this folder")
    names = sorted(split_files)
    samples = []
    for label, cls in enumerate(names):
        path = split_files[cls]
        for lineno, text in numbered_lines(path):
            fields = text.split()
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise AnnotationError(path, lineno, f"expected '<video>.avi <0|1|2>', got {text!r}")
            if fields[1] != SPLIT_CODE[split]:
                continue
            name = fields[0]
            samples.append(
                Sample(video=video_path(dataset, f"{cls}/{name}", where=(path, lineno)), label=label, id=strip_video_ext(name),
                       meta={"class_name": cls})
            )
    return Annotations(samples=samples, class_names=names, files=[split_files[c] for c in names])
