"""Few-sample training subsets (PROTOCOL.md §3) and the evenly spaced cap of the smoke profile (``max_videos``).

The rule is the SEVERE reference's (``action_recognition/datasets/utils.py::get_subset_data``): with C the
classes present in the training list, ``k = ceil(size / C)`` videos per class; classes in ascending label
order; one ``numpy.random.RandomState(seed)`` (the reference's seed is 99999) shared by all classes, each
drawing ``choice(n_c, min(k, n_c), replace=False)`` over that class's samples in annotation-file order. The
FineGym reader of the reference keeps only the clips found on disk before drawing
(``drop_missing_videos: true`` in the task's rule), so the subset depends on which clips exist. The chosen
set is listed in annotation order; its list is written beside the results and its hash recorded.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import ConfigError

RNGS = ("numpy_random_state",)


def class_balanced_subset(samples: list, size: int, seed: int) -> list:
    """The reference's class-balanced draw (module docstring); a class with fewer than k samples gives all."""
    by_class: dict = defaultdict(list)
    for i, s in enumerate(samples):
        if isinstance(s.label, bool) or not isinstance(s.label, (int, np.integer)):
            raise ConfigError("class-balanced subsets need single-label samples")
        by_class[int(s.label)].append(i)
    if not by_class:
        return []
    per_class = math.ceil(size / len(by_class))
    rng = np.random.RandomState(seed)  # one stream for all classes, as the reference
    chosen = []
    for label in sorted(by_class):
        idx = by_class[label]
        chosen.extend(idx[j] for j in rng.choice(len(idx), min(per_class, len(idx)), replace=False))
    return [samples[i] for i in sorted(chosen)]


def present_on_disk(samples: list, root: Path) -> list:
    """The samples whose video file exists under ``root`` (annotation order kept)."""
    from ..video.frames import video_present

    return [s for s in samples if video_present(Path(root) / s.video)]


def apply_train_subset(samples: list, rule: dict | None, root: Path | None = None) -> list:
    """The training list the task trains on: ``samples`` itself, or its subset under ``rule``."""
    if not rule:
        return samples
    if rule.get("rule") != "class_balanced":
        raise ConfigError(f"unknown train_subset rule {rule.get('rule')!r} (known: class_balanced)")
    if rule.get("rng", RNGS[0]) not in RNGS:
        raise ConfigError(f"unknown train_subset rng {rule.get('rng')!r} (known: {', '.join(RNGS)})")
    if rule.get("drop_missing_videos"):
        if root is None:
            raise ConfigError("train_subset with drop_missing_videos needs the dataset root")
        samples = present_on_disk(samples, root)
    return class_balanced_subset(samples, int(rule["size"]), int(rule.get("seed", 0)))


def evenly_spaced(samples: list, limit: int | None) -> list:
    """At most ``limit`` samples picked evenly through the list (class-sorted lists keep every class)."""
    if not limit or len(samples) <= limit:
        return samples
    idx = np.unique(np.linspace(0, len(samples) - 1, int(limit)).round().astype(int))
    return [samples[i] for i in idx]


def sample_list_hash(samples: list) -> str:
    text = "\n".join(f"{s.video}\t{s.label_str()}" for s in samples)
    return hashlib.sha256(text.encode()).hexdigest()


def write_sample_list(samples: list, path: Path) -> str:
    """Write ``video<TAB>label`` lines; returns the list's sha256 (the same as ``sample_list_hash``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{s.video}\t{s.label_str()}\n" for s in samples), encoding="utf-8")
    return sample_list_hash(samples)
