"""Metrics of the protocol (PROTOCOL.md §1, §5), computed with scikit-learn."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, average_precision_score, confusion_matrix, top_k_accuracy_score


def classification_metrics(scores: np.ndarray, labels: np.ndarray, num_classes: int) -> dict:
    """top-1/top-5 (%), mean class accuracy (%) over the classes present in the test set, per-class accuracy."""
    preds = scores.argmax(1)
    out = {"top1": 100.0 * accuracy_score(labels, preds)}
    if num_classes > 5:
        out["top5"] = 100.0 * top_k_accuracy_score(labels, scores, k=5, labels=np.arange(num_classes))
    cm = confusion_matrix(labels, preds, labels=np.arange(num_classes))
    support = cm.sum(1)
    present = support > 0
    per_class = np.full(num_classes, np.nan)
    per_class[present] = np.diag(cm)[present] / support[present]
    out["mean_class_accuracy"] = 100.0 * float(np.nanmean(per_class)) if present.any() else float("nan")
    out["per_class_accuracy"] = {str(c): round(100.0 * float(per_class[c]), 4) for c in np.flatnonzero(present)}
    return out


def multilabel_metrics(scores: np.ndarray, targets: np.ndarray) -> dict:
    """mAP (%) over the classes with at least one positive in the test set (the Charades rule)."""
    has_pos = targets.sum(0) > 0
    if not has_pos.any():
        return {"map": float("nan"), "classes_scored": 0, "per_class_ap": {}}
    ap = average_precision_score(targets[:, has_pos], scores[:, has_pos], average=None)
    ap = np.atleast_1d(ap)
    idx = np.flatnonzero(has_pos)
    return {
        "map": 100.0 * float(np.mean(ap)),
        "classes_scored": int(has_pos.sum()),
        "per_class_ap": {str(c): round(100.0 * float(a), 4) for c, a in zip(idx, ap)},
    }


def counting_metrics(pred: np.ndarray, gt: np.ndarray) -> dict:
    """UCFRep: MAE = mean(|pred - gt| / gt) (lower is better), OBOA = mean(|pred - gt| <= 1)."""
    pred, gt = np.asarray(pred, float), np.asarray(gt, float)
    return {
        "counting_error": float(np.mean(np.abs(pred - gt) / gt)),
        "obo_accuracy": float(np.mean(np.abs(pred - gt) <= 1)),
    }
