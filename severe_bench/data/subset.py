"""Few-sample training subsets (PROTOCOL.md §3): class-balanced, ceil(N / C) videos per class, drawn once
with a fixed seed. The chosen list is written beside the results and its hash recorded in every result.
Also the evenly spaced cap of the smoke profile (``max_videos``)."""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..errors import ConfigError


def class_balanced_subset(samples: list, size: int, seed: int) -> list:
    """``ceil(size / C)`` samples of each of the C classes present (all of a class if it has fewer).

    Deterministic for a given annotation list and seed: classes are visited in index order and each class's
    candidates in annotation order, so the subset does not depend on file-system listing order.
    """
    by_class: dict = defaultdict(list)
    for i, s in enumerate(samples):
        if not isinstance(s.label, int):
            raise ConfigError("class-balanced subsets need single-label samples")
        by_class[s.label].append(i)
    if not by_class:
        return []
    per_class = math.ceil(size / len(by_class))
    rng = np.random.default_rng(seed)
    chosen = []
    for label in sorted(by_class):
        idx = by_class[label]
        take = min(per_class, len(idx))
        chosen.extend(idx[j] for j in rng.choice(len(idx), size=take, replace=False))
    return [samples[i] for i in sorted(chosen)]


def apply_train_subset(samples: list, rule: dict | None) -> list:
    if not rule:
        return samples
    if rule.get("rule") != "class_balanced":
        raise ConfigError(f"unknown train_subset rule {rule.get('rule')!r} (known: class_balanced)")
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
