"""Representation bias (Li et al., RESOUND, ECCV 2018; as used by SynAPT), PROTOCOL.md §7.

B(D, φ) = log2(M(D, φ) / M_rnd) with M the top-1 (%) of a linear classifier trained on frozen features φ of the
dataset's training videos and tested on its test videos, and M_rnd = 100 / C the chance accuracy. φ is a static
representation: here the checkpoint under test fed one frame repeated over time (``features`` mode ``static``).

The transfer ratio of two checkpoints on a task is M_A / M_B of their evaluation results (``severe eval`` JSONs,
or the published SynAPT/PPMA fine-tuning numbers); the ratio-versus-bias table and plot show whether the gap
between two pre-trainings depends on how much a dataset can be solved from static appearance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .errors import SevereError

WEIGHT_DECAY_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


def chance_accuracy(num_classes: int) -> float:
    """M_rnd = 100 / C (%)."""
    if num_classes < 2:
        raise ValueError(f"need at least 2 classes, got {num_classes}")
    return 100.0 / num_classes


def representation_bias(top1: float, num_classes: int) -> float:
    """B = log2(M / M_rnd) for a top-1 accuracy M in percent; −inf when M = 0 (below any chance level)."""
    if not 0.0 <= top1 <= 100.0:
        raise ValueError(f"top-1 must be a percentage in [0, 100], got {top1}")
    if top1 == 0.0:
        return float("-inf")
    return math.log2(top1 / chance_accuracy(num_classes))


# --- linear probe on cached features -------------------------------------------------------------------

@dataclass
class ProbeResult:
    top1: float  # %
    weight_decay: float
    num_train: int
    num_test: int
    num_classes: int


def _fit(x: torch.Tensor, y: torch.Tensor, num_classes: int, weight_decay: float, max_iter: int,
         seed: int) -> torch.nn.Linear:
    """Multinomial logistic regression: mean cross-entropy + wd/2·||W||², full-batch L-BFGS (convex, so the
    optimum does not depend on the start)."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(x.shape[1], num_classes).to(x.device, x.dtype)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(x), y) + 0.5 * weight_decay * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return head


def _top1(head: torch.nn.Linear, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((head(x).argmax(1) == y).double().mean() * 100.0)


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 num_classes: int, weight_decay: float | None = None, device: str = "cpu", seed: int = 0,
                 max_iter: int = 100) -> ProbeResult:
    """Top-1 (%) of a linear classifier on standardised features. ``weight_decay=None`` picks it from
    ``WEIGHT_DECAY_GRID`` on a 20 % hold-out of the training set (never on the test set), then refits on all
    training rows. Rows with NaN (undecodable videos) are dropped."""
    train_x, test_x = np.asarray(train_x, dtype=np.float32), np.asarray(test_x, dtype=np.float32)
    train_y, test_y = np.asarray(train_y, dtype=np.int64), np.asarray(test_y, dtype=np.int64)
    keep_tr, keep_te = ~np.isnan(train_x).any(1), ~np.isnan(test_x).any(1)
    train_x, train_y, test_x, test_y = train_x[keep_tr], train_y[keep_tr], test_x[keep_te], test_y[keep_te]
    if len(train_x) < 2 or len(test_x) < 1:
        raise SevereError(f"linear probe needs training and test features (got {len(train_x)} / {len(test_x)})")
    for name, y in (("train", train_y), ("test", test_y)):
        if y.min() < 0 or y.max() >= num_classes:
            raise SevereError(f"{name} labels outside 0..{num_classes - 1}")
    dev = torch.device(device)
    mean = train_x.mean(0)
    std = train_x.std(0) + 1e-6
    xtr = torch.from_numpy((train_x - mean) / std).to(dev)
    xte = torch.from_numpy((test_x - mean) / std).to(dev)
    ytr, yte = torch.from_numpy(train_y).to(dev), torch.from_numpy(test_y).to(dev)

    if weight_decay is None:
        perm = np.random.default_rng(seed).permutation(len(xtr))
        n_val = max(1, len(xtr) // 5)
        val, fit = torch.from_numpy(perm[:n_val]).to(dev), torch.from_numpy(perm[n_val:]).to(dev)
        scores = []
        for wd in WEIGHT_DECAY_GRID:
            head = _fit(xtr[fit], ytr[fit], num_classes, wd, max_iter, seed)
            scores.append((_top1(head, xtr[val], ytr[val]), wd))
        best = max(s for s, _ in scores)
        weight_decay = max(wd for s, wd in scores if s == best)  # ties: the stronger regularisation
    head = _fit(xtr, ytr, num_classes, weight_decay, max_iter, seed)
    return ProbeResult(top1=_top1(head, xte, yte), weight_decay=weight_decay, num_train=len(xtr),
                       num_test=len(xte), num_classes=num_classes)


# --- transfer ratio against bias -----------------------------------------------------------------------

def published_transfer(kind: str = "ft") -> pd.DataFrame:
    """SynAPT/PPMA published fine-tuning (``ft``) or linear-probe (``lp``) top-1 as (method, task, value)."""
    from .report.reference import read_reference_csv

    table, comments = read_reference_csv("synthetic_transfer.csv")
    rows = []
    for _, rec in table.iterrows():
        for col in table.columns:
            if col.endswith(f"_{kind}") and pd.notna(rec[col]):
                rows.append({"method": rec["method"], "task": col[: -len(kind) - 1], "value": float(rec[col]),
                             "source": "leaderboard/reference/synthetic_transfer.csv"})
    return pd.DataFrame(rows, columns=["method", "task", "value", "source"])


def transfer_ratios(values: pd.DataFrame, method_a: str, method_b: str, tasks: list[str]) -> pd.DataFrame:
    """M_A / M_B per task from (method, task, value) rows (values of several seeds are averaged)."""
    out = []
    means = values.groupby(["method", "task"])["value"].mean()
    for task in tasks:
        a, b = means.get((method_a, task)), means.get((method_b, task))
        missing = [m for m, v in ((method_a, a), (method_b, b)) if v is None]
        if missing:
            known = sorted(values.loc[values["task"] == task, "method"].unique())
            raise SevereError(f"task {task!r}: no result for {', '.join(repr(m) for m in missing)} "
                              f"(found: {', '.join(known) or 'none'})")
        out.append({"task": task, "value_a": a, "value_b": b, "transfer_ratio": a / b if b else float("nan")})
    return pd.DataFrame(out)


def plot_ratio_vs_bias(table: pd.DataFrame, method_a: str, method_b: str, representation: str,
                       out_dir: Path) -> list[Path]:
    from matplotlib.figure import Figure
    from scipy import stats

    from .report.plots import save_figure

    fig = Figure(figsize=(4.8, 3.8), layout="constrained")
    ax = fig.subplots()
    finite = table[np.isfinite(table["bias"].astype(float)) & np.isfinite(table["transfer_ratio"].astype(float))]
    ax.scatter(finite["bias"], finite["transfer_ratio"], color="tab:blue", zorder=3)
    for rec in finite.itertuples():
        ax.annotate(rec.task, (rec.bias, rec.transfer_ratio), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel(f"representation bias B = log2(M / M_rnd)  [{representation}, static]", fontsize=8)
    ax.set_ylabel(f"transfer ratio {method_a} / {method_b}", fontsize=8)
    title = "transfer ratio vs. representation bias"
    left_out = sorted(set(table["task"]) - set(finite["task"]))
    if left_out:  # B = −∞ (probe at 0 %) or an undefined ratio
        ax.text(0.01, 0.01, f"not shown (B or ratio undefined): {', '.join(left_out)}", transform=ax.transAxes,
                fontsize=6, va="bottom")
    if len(finite) >= 3:
        r = stats.pearsonr(finite["bias"], finite["transfer_ratio"])[0]
        tau = stats.kendalltau(finite["bias"], finite["transfer_ratio"])[0]
        title += f"\nPearson r = {r:.2f}, Kendall τ = {tau:.2f}"
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    return save_figure(fig, out_dir, "bias_vs_transfer")


# --- the whole measurement for a list of tasks ---------------------------------------------------------

def _num_classes(task, root, samples, log=print) -> int:
    """C as ``severe eval`` takes it: the task's ``num_classes``, else the annotations' class list, else the
    largest label + 1 (a disagreement between task file and annotations is reported)."""
    from .registry import class_names

    try:
        names = class_names(task, root)
    except SevereError:
        names = None
    if task.num_classes:
        if names and int(task.num_classes) != len(names):
            log(f"bias {task.id}: WARNING the task file says {task.num_classes} classes, the annotations list "
                f"{len(names)}; using the task file's")
        return int(task.num_classes)
    if names:
        return len(names)
    return int(max(s.label for s in samples)) + 1


def measure_bias(task_ids: list[str], representation: str, out_cache: Path, *, arch: str | None = None,
                 trust: bool = False, mode: str = "static", layer: str | None = None, data_root=None,
                 profile: str = "full", max_train: int | None = None, max_test: int | None = None,
                 weight_decay: float | None = None, extract_batch_size: int = 8, workers: int = 0,
                 device: str = "auto", clip: dict | None = None, seed: int = 0,
                 log=print) -> tuple[pd.DataFrame, dict]:
    """Per task: linear-probe top-1 on ``mode`` features of ``representation`` and B = log2(M / M_rnd).
    ``clip``: optional ``frames``/``crop``/``resize`` overriding the task's test clip."""
    from .checkpoints import load_checkpoint
    from .engine.runner import pick_device
    from .data.subset import evenly_spaced
    from .features import clip_spec_for, extract_features, task_for
    from .registry import read_split, resolve_data_root

    dev = pick_device(device)
    torch.manual_seed(seed)  # a "scratch" representation is the same random net on every run
    loaded = load_checkpoint(representation, arch=arch, trust=trust, count_flops=False)
    names = list(loaded.backbone.layer_names)
    layer = layer or names[-1]
    if layer not in names:
        raise SevereError(f"unknown layer {layer!r}; this backbone has: {', '.join(names)}")
    label = str(loaded.info.get("name") or Path(representation).stem)
    tasks = [task_for(t, profile, loaded.info.get("architecture")) for t in task_ids]  # fail fast on unknown ids
    prepared = []  # every task's data is read and checked before any (slow) feature extraction
    for task in tasks:
        root = resolve_data_root(task, data_root)
        train = evenly_spaced(read_split(task, root, "train"), max_train)
        test = evenly_spaced(read_split(task, root, "test"), max_test)
        if not all(isinstance(s.label, (int, np.integer)) for s in train + test):
            raise SevereError(f"task {task.id}: representation bias needs single-label classification "
                              f"(this task's labels are {type((train + test)[0].label).__name__})")
        prepared.append((task, root, train, test, _num_classes(task, root, train + test, log)))
    rows = []
    for task, root, train, test, num_classes in prepared:
        feats = {}
        spec = clip_spec_for(task, loaded.info, **(clip or {}))
        for split, samples in (("train", train), ("test", test)):
            fs = extract_features(loaded, task, root, samples, [layer], out_cache, split=split, mode=mode, spec=spec,
                                  batch_size=extract_batch_size, workers=workers, device=dev, label=label, log=log)
            feats[split] = (fs.array(layer), np.array([s.label for s in samples]), len(fs.failed))
        probe = linear_probe(feats["train"][0], feats["train"][1], feats["test"][0], feats["test"][1], num_classes,
                             weight_decay=weight_decay, device=str(dev), seed=seed)
        b = representation_bias(probe.top1, num_classes)
        log(f"bias {task.id}: probe top-1 {probe.top1:.2f}% over {num_classes} classes -> B = {b:.3f}")
        rows.append({"task": task.id, "dataset": task.dataset.get("name"), "num_classes": num_classes,
                     "chance_top1": chance_accuracy(num_classes), "probe_top1": probe.top1, "bias": b,
                     "weight_decay": probe.weight_decay, "num_train": probe.num_train, "num_test": probe.num_test,
                     "unreadable_train": feats["train"][2], "unreadable_test": feats["test"][2]})
    meta = {"representation": {"spec": representation, "label": label, "sha256": loaded.info.get("sha256"),
                               "architecture": loaded.info.get("architecture")},
            "mode": mode, "layer": layer, "profile": profile, "clip": clip or {}, "max_train": max_train, "max_test": max_test,
            "formula": "B = log2(M / M_rnd), M_rnd = 100 / C"}
    return pd.DataFrame(rows), meta
