"""Clip-level training targets for temporally annotated multi-label videos (Charades, PROTOCOL.md §5).

PySlowFast trains Charades on the labels of the sampled clip, not of the whole video: the union of the
labels of the frames from the clip's first to its last sampled frame (``utils.aggregate_labels`` over
``seq[0] .. seq[-1]``). Here a video's actions are ``segments`` ``(class, start s, end s)`` (the csv's
``actions`` column, or runs of labelled frames of a PySlowFast frame list), and a clip spans the times of
its first and last frame; every action whose closed span overlaps the clip's is a target. Test targets stay
video-level (all actions of the video), as PySlowFast's ``convert_to_video_level_labels``.
"""

from __future__ import annotations

import numpy as np


def clip_span(indices, fps: float) -> tuple[float, float]:
    """Seconds of the first and last frame of a clip (file frame ``i`` is shown from ``i / fps``)."""
    idx = np.asarray(indices)
    if not fps or not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"clip-level targets need the video's frame rate, got {fps!r}")
    return float(idx.min()) / fps, float(idx.max()) / fps


def labels_in_span(segments, start: float, end: float) -> tuple[int, ...]:
    """Sorted classes of the ``(class, start, end)`` segments that overlap ``[start, end]`` (ends included).

    A segment whose end lies before its start (7 of Charades_v1_train.csv's actions) covers no frame, as
    with a per-frame rule ``start <= t <= end``, so it is never a clip's target."""
    return tuple(sorted({int(c) for c, s, e in segments if s <= e and s <= end and e >= start}))


def segments_from_frame_labels(frame_labels: list, fps: float) -> list[tuple[int, float, float]]:
    """``(class, start s, end s)`` for each run of consecutive frames carrying a class (frame ``k`` at
    ``k / fps``), so a frame list's per-frame labels and a csv's time spans feed the same overlap rule."""
    segments, open_runs = [], {}
    for k, labels in enumerate(list(frame_labels) + [()]):
        for c in list(open_runs):
            if c not in labels:
                segments.append((c, open_runs.pop(c) / fps, (k - 1) / fps))
        for c in labels:
            open_runs.setdefault(int(c), k)
    return sorted(segments)
