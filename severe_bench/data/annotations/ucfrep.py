"""UCFRep repetition-counting annotations: one MATLAB ``.mat`` file per video.

Roles: ``train`` / ``test`` are folders (``annotations/train``, ``annotations/val``) of
``v_<Class>_gXX_cYY.mat`` files, each holding a struct ``label`` with ``duration``, ``start_frame``,
``end_frame``, ``temporal_bound`` (cycle boundaries, count = len - 1), ``offset_next_estimate`` and
``offset_pre_estimate`` (per-frame). Label = the count as a float; meta keeps the boundaries, the start/end
frames, the duration and the per-frame offsets. Like the SEVERE reference loader
(``Repetition-Counting/datasets/ucf_aug.py``), videos with ``duration <= 0`` or fewer than 3 boundaries
(< 2 cycles) are dropped; they are listed in ``Annotations.skipped``.
Video = ``<video_dir>/<Class>/<stem>.avi`` (the UCF101 original). The class folder is matched
case-insensitively against an optional ``class_index`` (UCF ``classInd.txt``) or, failing that, against the
folders present under ``video_dir`` (UCF101 stores ``v_HandStandPushups_*`` in ``HandstandPushups/``).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from ...errors import AnnotationError
from ..sample import Sample
from .base import (
    CLASS_ROLES, Annotations, existing, optional_role, read_indexed_classes, role_path, split_and_optional_classes,
    video_path,
)

NAME_RE = re.compile(r"^v_(?P<cls>.+)_g\d+_c\d+$")
FIELDS = ("duration", "start_frame", "end_frame", "temporal_bound", "offset_next_estimate", "offset_pre_estimate")


required = split_and_optional_classes


def _numbers(value) -> np.ndarray:
    """A MATLAB field as a flat float array, whatever nesting loadmat produced (1x1 wrappers, cells)."""
    arr = np.asarray(value)
    while arr.dtype == object and arr.size == 1:
        arr = np.asarray(arr.reshape(-1)[0])
    if arr.dtype == object:  # a cell array of numbers / vectors
        parts = [_numbers(v) for v in arr.reshape(-1)]
        arr = np.concatenate(parts) if parts else np.zeros(0)
    if arr.dtype.names:  # a struct where a number was expected
        raise ValueError("is a struct, expected numbers")
    return arr.astype(float).reshape(-1)


def _struct_fields(mat: dict, path: Path) -> dict:
    """Field name -> value of the ``label`` struct (or of top-level variables if the file has no struct)."""
    if "label" in mat:
        obj = mat["label"]
        # Unwrap 1x1 struct arrays / object wrappers down to one record.
        while True:
            if isinstance(obj, np.ndarray) and obj.dtype.names is None and obj.dtype == object and obj.size == 1:
                obj = obj.reshape(-1)[0]
            elif isinstance(obj, np.ndarray) and obj.dtype.names is not None and obj.size == 1:
                rec = obj.reshape(-1)[0]
                return {name: rec[name] for name in obj.dtype.names}
            elif isinstance(obj, np.void) and obj.dtype.names is not None:
                return {name: obj[name] for name in obj.dtype.names}
            elif hasattr(obj, "_fieldnames"):  # scipy mat_struct (struct_as_record=False files)
                return {name: getattr(obj, name) for name in obj._fieldnames}
            else:
                break
        raise AnnotationError(path, None, f"variable 'label' is not a 1x1 struct (got {type(obj).__name__})")
    if all(f in mat for f in ("temporal_bound", "start_frame", "end_frame")):
        return {k: v for k, v in mat.items() if not k.startswith("__")}
    raise AnnotationError(path, None, "no struct 'label' (with temporal_bound, start_frame, end_frame, ...)")


def read_mat(path: Path) -> dict:
    """The annotation of one video: ints for the scalars, lists for the vectors."""
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=False, struct_as_record=True)
    except Exception as exc:  # scipy raises several types for corrupt / non-MAT files
        raise AnnotationError(path, None, f"not a readable MATLAB file: {exc}") from None
    fields = _struct_fields(mat, path)
    out = {}
    for name in FIELDS:
        if name not in fields:
            if name.startswith("offset_"):
                continue  # only used by density-style training; counting needs the bounds
            raise AnnotationError(path, None, f"struct 'label' has no field {name!r}")
        try:
            values = _numbers(fields[name])
        except (ValueError, TypeError) as exc:
            raise AnnotationError(path, None, f"field {name!r} {exc}") from None
        if name in ("duration", "start_frame", "end_frame"):
            if values.size != 1:
                raise AnnotationError(path, None, f"field {name!r} should be a scalar, has {values.size} values")
            out[name] = int(round(values[0]))
        else:
            out[name] = [int(round(v)) for v in values]
    return out


def _folder_resolver(root: Path, dataset: dict):
    """Class name from a file name -> class folder name on disk (case-insensitive)."""
    classes_rel = optional_role(dataset, *CLASS_ROLES)
    known: list[str] = []
    if classes_rel:
        known = read_indexed_classes(existing(root, classes_rel, dataset))
    else:
        vdir = Path(root) / str(dataset.get("video_dir") or "")
        if vdir.is_dir():
            known = [p.name for p in vdir.iterdir() if p.is_dir()]
    lookup = {k.lower(): k for k in known}
    return lambda cls: lookup.get(cls.lower(), cls)


def read(root: Path, dataset: dict, split: str) -> Annotations:
    folder = existing(root, role_path(dataset, split), dataset, folder=True)
    mats = sorted(folder.glob("*.mat"))
    if not mats:
        raise AnnotationError(folder, None, "no .mat annotation files in this folder")
    folder_of = _folder_resolver(root, dataset)
    samples, skipped = [], []
    for path in mats:
        m = NAME_RE.match(path.stem)
        if not m:
            raise AnnotationError(path, None, "file name is not 'v_<Class>_gXX_cYY.mat'")
        ann = read_mat(path)
        bounds = ann["temporal_bound"]
        if ann["duration"] <= 0 or len(bounds) < 3:
            skipped.append((path.stem, f"duration {ann['duration']}, {len(bounds)} boundaries (< 2 cycles)"))
            continue
        rel = f"{folder_of(m['cls'])}/{path.stem}.avi"
        meta = {"count": len(bounds) - 1, **ann}
        samples.append(Sample(video=video_path(dataset, rel, where=(path, None)), label=float(len(bounds) - 1), id=path.stem, meta=meta))
    classes_rel = optional_role(dataset, *CLASS_ROLES)
    files = [folder] + ([Path(root) / classes_rel] if classes_rel else [])
    return Annotations(samples=samples, class_names=None, files=files, skipped=skipped)
