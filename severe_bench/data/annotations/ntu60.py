"""NTU RGB+D 60, cross-subject protocol, from the video file names.

NTU ships no split lists: the file name ``SsssCcccPpppRrrrAaaa_rgb.avi`` carries setup, camera, performer
(subject), replication and action; label = A - 1 and the cross-subject split puts performers
1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38 in train, all others in test
(Shahroudy et al., CVPR 2016). The ``train`` / ``test`` role may name either
- a folder (normally the video folder): every file in it (recursively) whose name matches the pattern is
  a candidate and its path relative to the root is the video path; or
- a text list, one video per line (first column, relative to ``video_dir``; any further columns ignored).
Either way the split is then decided by the performer id, so one folder or one list of all videos serves
both roles. Videos of NTU-120 actions (A > 60) are left out and listed in ``Annotations.skipped``.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from ...errors import AnnotationError, ConfigError
from ..sample import Sample
from .base import Annotations, missing, numbered_lines, role_path, video_path

NAME_RE = re.compile(r"^S(?P<S>\d{3})C(?P<C>\d{3})P(?P<P>\d{3})R(?P<R>\d{3})A(?P<A>\d{3})(?:_rgb)?(?:\.\w+)?$")
TRAIN_SUBJECTS = frozenset({1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38})
NUM_ACTIONS = 60


def required(dataset: dict, split: str) -> list[str]:
    return [role_path(dataset, split)]


def in_split(performer: int, split: str) -> bool:
    return (performer in TRAIN_SUBJECTS) == (split == "train")


def _candidates(root: Path, dataset: dict, split: str):
    """(video path relative to root, file name, where) for every listed video."""
    source = Path(root) / role_path(dataset, split)
    if source.is_dir():
        for p in sorted(source.rglob("*")):
            if p.is_file() and NAME_RE.match(p.name):
                yield p.relative_to(root).as_posix(), p.name, None
    elif source.is_file():
        for lineno, text in numbered_lines(source):
            rel = text.split()[0].replace("\\", "/")
            yield video_path(dataset, rel, where=(source, lineno)), posixpath.basename(rel), (source, lineno)
    else:
        raise missing(source, dataset, "video folder or list")


def read(root: Path, dataset: dict, split: str) -> Annotations:
    if split not in ("train", "test"):
        raise ConfigError(f"ntu60: split must be 'train' or 'test', got {split!r}")
    samples, skipped = [], []
    for rel, name, where in _candidates(root, dataset, split):
        m = NAME_RE.match(name)
        if not m:
            raise AnnotationError(where[0], where[1], f"{name!r} is not an NTU name 'SsssCcccPpppRrrrAaaa_rgb.avi'")
        action, performer = int(m["A"]), int(m["P"])
        vid = name.split("_rgb")[0].split(".")[0]
        if not 1 <= action <= NUM_ACTIONS:
            skipped.append((vid, f"action A{action:03d} is not one of the 60 NTU-60 actions"))
            continue
        if not in_split(performer, split):
            continue
        meta = {"setup": int(m["S"]), "camera": int(m["C"]), "performer": performer,
                "replication": int(m["R"]), "action": action}
        samples.append(Sample(video=rel, label=action - 1, id=vid, meta=meta))
    if not samples:
        raise AnnotationError(Path(root) / role_path(dataset, split), None,
                              f"no NTU-60 videos of the {split} subjects found")
    return Annotations(samples=samples, class_names=None, files=[Path(root) / role_path(dataset, split)],
                       skipped=skipped)
