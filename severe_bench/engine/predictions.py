"""The per-video outputs of a run, written beside its result as ``predictions.json``.

Schema ``severe-bench/predictions/v1`` (docs/CONVENTIONS.md): enough to recompute the run's metrics without
the model (the leaderboard does, for every submission).

```
{"schema": "severe-bench/predictions/v1",
 "kind": "single_label" | "multi_label" | "counting",
 "num_classes": 101,                     # null for counting
 "videos": {"<root-relative video>": {...}, ...},   # the scored test videos, in test order
 "unreadable": {"<video>": "<reason>", ...}}
```

Per video: ``single_label`` -> ``{"scores": [one per class], "label": 3}`` (the aggregated test score over
views, e.g. mean softmax); ``multi_label`` -> ``{"scores": [...], "labels": [2, 7]}`` (positive classes);
``counting`` -> ``{"pred": 5, "gt": 6, "cycle": 31.5}``. Scores are float32 written at the shortest decimal
that reads back as the same float32, so metrics recomputed from the file equal the reported ones exactly.
"""

from __future__ import annotations

import numpy as np

PREDICTIONS_SCHEMA = "severe-bench/predictions/v1"
PREDICTIONS_FILE = "predictions.json"
KINDS = ("single_label", "multi_label", "counting")


def _float32_list(row) -> list[float]:
    # str() of a numpy float32 is its shortest round-trip repr; float() of it reads back as the same float32
    return [float(str(v)) for v in np.asarray(row, dtype=np.float32).ravel()]


def classification_predictions(videos, scores, labels, multilabel: bool, num_classes: int, unreadable: dict) -> dict:
    """``scores`` (N, C) aggregated test scores; ``labels`` (N,) class indices or (N, C) 0/1 targets."""
    out = {}
    for video, s, y in zip(videos, scores, labels):
        if multilabel:
            out[video] = {"scores": _float32_list(s), "labels": [int(c) for c in np.flatnonzero(np.asarray(y) > 0.5)]}
        else:
            out[video] = {"scores": _float32_list(s), "label": int(y)}
    return {"schema": PREDICTIONS_SCHEMA, "kind": "multi_label" if multilabel else "single_label",
            "num_classes": int(num_classes), "videos": out, "unreadable": dict(unreadable)}


def counting_predictions(per_video: dict, unreadable: dict) -> dict:
    """``per_video``: video -> {"pred", "gt", "cycle"} as the counting runner produces them."""
    return {"schema": PREDICTIONS_SCHEMA, "kind": "counting", "num_classes": None,
            "videos": {v: dict(p) for v, p in per_video.items()}, "unreadable": dict(unreadable)}


def score_arrays(doc: dict) -> tuple[np.ndarray, np.ndarray]:
    """(scores, labels) arrays of a classification predictions document, in its video order: labels are
    class indices (single-label) or an (N, C) 0/1 target matrix (multi-label)."""
    videos = list(doc["videos"].values())
    c = int(doc["num_classes"])
    scores = np.array([v["scores"] for v in videos], dtype=np.float32).reshape(len(videos), c)
    if doc["kind"] == "multi_label":
        labels = np.zeros((len(videos), c), dtype=np.float32)
        for i, v in enumerate(videos):
            labels[i, v["labels"]] = 1.0
    else:
        labels = np.array([v["label"] for v in videos], dtype=np.int64)
    return scores, labels


def recompute_metrics(doc: dict) -> dict:
    """The metrics of ``engine/metrics.py`` recomputed from a predictions document."""
    from .metrics import classification_metrics, counting_metrics, multilabel_metrics

    if doc["kind"] == "counting":
        videos = list(doc["videos"].values())
        return counting_metrics(np.array([v["pred"] for v in videos], float), np.array([v["gt"] for v in videos], float))
    scores, labels = score_arrays(doc)
    if doc["kind"] == "multi_label":
        return multilabel_metrics(scores, labels)
    return classification_metrics(scores, labels, int(doc["num_classes"]))
