"""Learning-rate schedules, evaluated per iteration from the fractional pass (so milestones in passes work
for any dataset size): optional linear warm-up, then multi-step decay, cosine, or constant."""

from __future__ import annotations

import math


def lr_at(schedule: dict, base_lr: float, progress: float) -> float:
    """Learning rate at ``progress`` passes (a float) into training."""
    warm = float(schedule.get("warmup_passes", 0) or 0)
    if warm > 0 and progress < warm:
        start = float(schedule.get("warmup_start_lr", 0.0))
        return start + (base_lr - start) * progress / warm
    kind = schedule.get("kind", "multistep")
    if kind == "multistep":
        n = sum(1 for m in schedule.get("milestones", []) if progress >= m)
        return base_lr * float(schedule.get("gamma", 0.1)) ** n
    if kind == "cosine":
        total = float(schedule["passes"])
        t = min(1.0, (progress - warm) / max(total - warm, 1e-9))
        lo = float(schedule.get("min_lr", 0.0))
        return lo + 0.5 * (base_lr - lo) * (1 + math.cos(math.pi * t))
    if kind == "constant":
        return base_lr
    raise ValueError(f"unknown schedule kind {kind!r}")
