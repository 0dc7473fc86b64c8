"""Representation bias (Li et al., RESOUND, ECCV 2018; as used by SynAPT), PROTOCOL.md §7.

B(D, φ) = log2(M(D, φ) / M_rnd) with M the top-1 (%) of a linear classifier trained on frozen features φ of the
dataset's training videos and tested on its test videos, and M_rnd = 100 / C the chance accuracy. Two measures:

* ``imagenet-tsn`` (the published definition, SynAPT Table 4.2): φ is an ImageNet image model (ResNet-18 by
  default) applied TSN-style — frames from equal segments of the whole video, 2D features averaged over them —
  and the probe is trained as SynAPT trains its linear probes (SGD; values in ``tasks/_bias.yaml``).
* ``checkpoint-static``: φ is the checkpoint under test fed one frame repeated over time (``features`` mode
  ``static``), probed by L2-regularised logistic regression. It answers another question (how much of a task a
  given video model solves from appearance alone) and is labelled as such everywhere.

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
IMAGENET_TSN, CHECKPOINT_STATIC = "imagenet-tsn", "checkpoint-static"
MEASURES = {
    IMAGENET_TSN: "ImageNet image model on TSN frames, SGD linear probe (SynAPT Table 4.2 / RESOUND definition)",
    CHECKPOINT_STATIC: "the checkpoint under test on one frame repeated over time, logistic-regression probe",
}
REFERENCE_FILE = "representation_bias.csv"


def measure_label(measure: str, representation: str) -> str:
    """Short label for tables and plot axes, e.g. ``imagenet-tsn: ImageNet ResNet-18``."""
    return f"{measure}: {representation}"


def bias_protocol(task) -> dict:
    """The resolved bias values of a task: ``tasks/_bias.yaml``'s ``bias`` with the task file's own ``bias:``
    (and a profile's) on top."""
    from .registry import _load_yaml, deep_merge, tasks_dir

    path = tasks_dir() / "_bias.yaml"
    if not path.exists():
        raise SevereError(f"the bias protocol file {path} is missing; reinstall severe-bench")
    base = _load_yaml(path).get("bias") or {}
    return deep_merge(base, (task.config.get("bias") or {}) if task is not None else {})


def bias_hash(task, measure: str, values: dict, representation_sha: str | None) -> str:
    """Identifies what decides a bias number: measure, resolved values, representation weights, dataset."""
    import hashlib
    import json

    dataset = task.hashed_values()["dataset"]
    payload = {"measure": measure, "values": values, "representation": representation_sha, "dataset": dataset,
               "train_subset": task.train_subset}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
    method: str = "lbfgs"
    final_train_loss: float | None = None


def _clean(train_x, train_y, test_x, test_y, num_classes):
    """float32/int64 arrays without NaN rows (undecodable videos), labels checked."""
    train_x, test_x = np.asarray(train_x, dtype=np.float32), np.asarray(test_x, dtype=np.float32)
    train_y, test_y = np.asarray(train_y, dtype=np.int64), np.asarray(test_y, dtype=np.int64)
    keep_tr, keep_te = ~np.isnan(train_x).any(1), ~np.isnan(test_x).any(1)
    train_x, train_y, test_x, test_y = train_x[keep_tr], train_y[keep_tr], test_x[keep_te], test_y[keep_te]
    if len(train_x) < 2 or len(test_x) < 1:
        raise SevereError(f"linear probe needs training and test features (got {len(train_x)} / {len(test_x)})")
    for name, y in (("train", train_y), ("test", test_y)):
        if y.min() < 0 or y.max() >= num_classes:
            raise SevereError(f"{name} labels outside 0..{num_classes - 1}")
    return train_x, train_y, test_x, test_y


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
    train_x, train_y, test_x, test_y = _clean(train_x, train_y, test_x, test_y, num_classes)
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


PROBE_KEYS = ("optimizer", "lr", "momentum", "weight_decay", "dropout", "batch_size", "schedule", "epochs", "features")


def sgd_probe(train_x, train_y, test_x, test_y, num_classes: int, *, lr: float, momentum: float,
              weight_decay: float, dropout: float, batch_size: int, epochs: int, schedule: str = "cosine",
              optimizer: str = "sgd", features: str = "raw", device: str = "cpu", seed: int = 0) -> ProbeResult:
    """A linear classifier trained as SynAPT trains its linear probes (§4.1.1): SGD with momentum and weight
    decay, dropout on the frozen features, cosine-decayed lr per epoch, shuffled minibatches; the classifier of
    the last epoch is tested (nothing is chosen on the test set). Head initialised N(0, 0.01), bias 0 (TSN's
    head). ``features="standardised"`` z-scores the features with the training set's statistics first."""
    if optimizer != "sgd" or schedule not in ("cosine", "constant") or features not in ("raw", "standardised"):
        raise SevereError(f"bias probe: unsupported optimizer/schedule/features {optimizer!r}/{schedule!r}/"
                          f"{features!r} (sgd; cosine or constant; raw or standardised)")
    if int(epochs) < 1 or int(batch_size) < 1:
        raise SevereError(f"bias probe: epochs and batch_size must be >= 1 (got {epochs}, {batch_size})")
    train_x, train_y, test_x, test_y = _clean(train_x, train_y, test_x, test_y, num_classes)
    if features == "standardised":
        mean, std = train_x.mean(0), train_x.std(0) + 1e-6
        train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    dev = torch.device(device)
    xtr, ytr = torch.from_numpy(train_x).to(dev), torch.from_numpy(train_y).to(dev)
    xte, yte = torch.from_numpy(test_x).to(dev), torch.from_numpy(test_y).to(dev)
    gen = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(xtr.shape[1], num_classes).to(dev)
    with torch.no_grad():
        head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * 0.01)
        head.bias.zero_()
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    n, bs = len(xtr), int(batch_size)
    loss_sum = 0.0
    for epoch in range(int(epochs)):
        if schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * epoch / int(epochs)))
        order = torch.randperm(n, generator=gen).to(dev)
        loss_sum = 0.0
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            x = torch.nn.functional.dropout(xtr[idx], p=dropout, training=True) if dropout else xtr[idx]
            loss = torch.nn.functional.cross_entropy(head(x), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(idx)
        if not math.isfinite(loss_sum):
            raise SevereError(f"bias probe: the training loss is not finite at epoch {epoch + 1} (lr {lr} too high?)")
    head.eval()
    return ProbeResult(top1=_top1(head, xte, yte), weight_decay=weight_decay, num_train=n, num_test=len(xte),
                       num_classes=num_classes, method="sgd", final_train_loss=loss_sum / n)


# --- published Table 4.2 -------------------------------------------------------------------------------

def published_bias() -> pd.DataFrame:
    """SynAPT Table 4.2 (leaderboard/reference/representation_bias.csv): task, dataset, num_classes, M, B."""
    from .report.reference import read_reference_csv

    table, comments = read_reference_csv(REFERENCE_FILE)
    table = table.copy()
    table["source"] = f"leaderboard/reference/{REFERENCE_FILE}" + (f" ({comments[0]})" if comments else "")
    return table


def reference_row(published: pd.DataFrame, task_id: str, dataset: str | None) -> dict | None:
    """The published row for a task: by task id, else by its dataset name (``ucf101_linear`` -> UCF101)."""
    for key in (task_id, dataset):
        hit = published[published["task"] == key]
        if len(hit):
            return hit.iloc[0].to_dict()
    return None


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


def ratio_groups(values: pd.DataFrame, method_a: str, method_b: str, tasks: list[str]) -> pd.DataFrame:
    """Transfer ratios A / B per evaluation kind (``group`` column of ``values``: a protocol such as finetune or
    linear, or a published FT/LP column) and task; a (group, task) without both methods is left out. Raises, as
    ``transfer_ratios`` does, for a task that no group has both methods for."""
    if "group" not in values:
        values = values.assign(group="results")
    out = []
    for group in dict.fromkeys(values["group"]):  # first-seen order: the user's results before published ones
        part = values[values["group"] == group]
        ok = [t for t in tasks if {method_a, method_b} <= set(part.loc[part["task"] == t, "method"])]
        if ok:
            out.append(transfer_ratios(part, method_a, method_b, ok).assign(group=group))
    covered = set().union(*(set(r["task"]) for r in out)) if out else set()
    lacking = [t for t in tasks if t not in covered]
    if lacking:
        transfer_ratios(values, method_a, method_b, lacking)  # raises with the methods it found
        raise SevereError(f"no single kind of result has both {method_a!r} and {method_b!r} for "
                          f"{', '.join(lacking)}")
    return pd.concat(out, ignore_index=True)[["group", "task", "value_a", "value_b", "transfer_ratio"]]


def ratio_table(bias_table: pd.DataFrame, ratios: pd.DataFrame, method_a: str, method_b: str,
                label: str) -> pd.DataFrame:
    """SynAPT Table 4.3's layout: one column per task, rows M and B (and the published ones when present),
    then the transfer ratio A / B of each kind of result."""
    tasks = list(bias_table["task"])
    by = bias_table.set_index("task")
    rows = [{"row": f"M (%) [{label}]", **by["probe_top1"].to_dict()},
            {"row": f"B [{label}]", **by["bias"].to_dict()}]
    if "published_bias" in by:
        rows += [{"row": "published M (%) [SynAPT Table 4.2]", **by["published_probe_top1"].to_dict()},
                 {"row": "published B [SynAPT Table 4.2]", **by["published_bias"].to_dict()}]
    for group in dict.fromkeys(ratios["group"]):
        part = ratios[ratios["group"] == group].set_index("task")["transfer_ratio"]
        rows.append({"row": f"{method_a} / {method_b} ({group})", **part.to_dict()})
    return pd.DataFrame(rows, columns=["row"] + tasks)


def read_bias_table(spec: str) -> tuple[pd.DataFrame, dict]:
    """A bias table written before (``bias.json`` or ``bias.csv`` of ``severe bias``), or ``published``: SynAPT
    Table 4.2 itself."""
    import json

    if spec == "published":
        pub = published_bias()
        table = pub[["task", "dataset", "num_classes", "probe_top1", "bias"]].assign(
            measure=IMAGENET_TSN, representation="SynAPT Table 4.2")
        return table, {"measure": {"name": IMAGENET_TSN, "label": measure_label(IMAGENET_TSN, "SynAPT Table 4.2"),
                                   "description": MEASURES[IMAGENET_TSN]},
                       "representation": {"label": "SynAPT Table 4.2", "source": pub["source"].iloc[0]},
                       "comparable_with_published": True}
    path = Path(spec)
    if not path.is_file():
        raise SevereError(f"--bias-table {spec}: no such file (give a bias.json/bias.csv of `severe bias`, or "
                          "'published' for SynAPT Table 4.2)")
    try:
        if path.suffix == ".json":
            payload = json.loads(path.read_text(encoding="utf-8"))
            table = pd.DataFrame(payload["rows"])
            meta = {k: v for k, v in payload.items() if k != "rows"}
        else:
            table, meta = pd.read_csv(path), {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SevereError(f"{path}: not a bias table of `severe bias` ({exc})") from None
    missing = [c for c in ("task", "probe_top1", "bias") if c not in table]
    if missing:
        raise SevereError(f"{path}: not a bias table of `severe bias` (no column {', '.join(missing)})")
    if "measure" not in meta:
        measure = str(table["measure"].iloc[0]) if "measure" in table else CHECKPOINT_STATIC
        rep = str(table["representation"].iloc[0]) if "representation" in table else path.stem
        meta["measure"] = {"name": measure, "label": measure_label(measure, rep), "description": MEASURES.get(measure)}
    table["bias"] = pd.to_numeric(table["bias"], errors="coerce").fillna(float("-inf"))  # null: B = −∞
    derived = [c for c in table if c.startswith(("value_", "published_")) or c == "transfer_ratio"]
    table = table.drop(columns=derived)  # recomputed from this run's --results / --with-reference
    return table, meta


def with_reference(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with SynAPT Table 4.2's published M and B beside each task's (NaN where it has none)."""
    pub = published_bias()
    extra = []
    for rec in table.itertuples():
        ref = reference_row(pub, rec.task, getattr(rec, "dataset", None))
        extra.append({"published_probe_top1": ref["probe_top1"] if ref else float("nan"),
                      "published_bias": ref["bias"] if ref else float("nan")})
    return pd.concat([table.reset_index(drop=True), pd.DataFrame(extra)], axis=1)


_MARKERS = ("o", "s", "^", "D", "v", "P")


def _label_tasks(ax, points: pd.DataFrame) -> None:
    """Each task's name once, beside its highest point: right, else left, else below, whichever does not overlap
    an earlier label (positions compared in fractions of the data range)."""
    if points.empty:
        return
    x, y = points["bias"].astype(float), points["transfer_ratio"].astype(float)
    span_x, span_y = max(x.max() - x.min(), 1e-9), max(y.max() - y.min(), 1e-9)
    # (offset in points, alignment, where the label's centre lands relative to the point in range fractions)
    spots = [((4, 3), "left", (0.07, 0.02)), ((-4, 3), "right", (-0.07, 0.02)),
             ((4, -10), "left", (0.07, -0.04)), ((-4, -10), "right", (-0.07, -0.04))]
    placed: list[tuple[float, float]] = []
    for task, part in points.groupby("task", sort=False):
        top = part.loc[part["transfer_ratio"].astype(float).idxmax()]
        px, py = (float(top["bias"]) - x.min()) / span_x, (float(top["transfer_ratio"]) - y.min()) / span_y
        for offset, ha, (fx, fy) in spots:
            cx, cy = px + fx, py + fy
            if not any(abs(cx - qx) < 0.14 and abs(cy - qy) < 0.045 for qx, qy in placed):
                break
        placed.append((cx, cy))
        ax.annotate(task, (float(top["bias"]), float(top["transfer_ratio"])), fontsize=7, xytext=offset,
                    textcoords="offset points", ha=ha)


def plot_ratio_vs_bias(table: pd.DataFrame, method_a: str, method_b: str, representation: str,
                       out_dir: Path, measure: str | None = None) -> list[Path]:
    """Transfer ratio against B, one series per kind of result (``group`` column, when present)."""
    from matplotlib.figure import Figure
    from scipy import stats

    from .report.plots import save_figure

    table = table if "group" in table else table.assign(group="results")
    fig = Figure(figsize=(5.2, 4.0), layout="constrained")
    ax = fig.subplots()
    finite = table[np.isfinite(table["bias"].astype(float)) & np.isfinite(table["transfer_ratio"].astype(float))]
    for i, group in enumerate(dict.fromkeys(table["group"])):
        part = finite[finite["group"] == group]
        name = str(group)
        if len(part) >= 3:
            r = stats.pearsonr(part["bias"], part["transfer_ratio"])[0]
            tau = stats.kendalltau(part["bias"], part["transfer_ratio"])[0]
            name += f" (r = {r:.2f}, τ = {tau:.2f})"
        ax.scatter(part["bias"], part["transfer_ratio"], marker=_MARKERS[i % len(_MARKERS)], zorder=3, label=name)
    _label_tasks(ax, finite)
    ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
    if len(finite):  # B lives on a scale of bits: never zoom into rounding noise of a single point
        lo, hi = float(finite["bias"].min()), float(finite["bias"].max())
        if hi - lo < 1.0:
            mid = (lo + hi) / 2
            ax.set_xlim(mid - 0.6, mid + 0.6)
    ax.ticklabel_format(axis="both", style="plain", useOffset=False)
    what = f"{measure}: {representation}" if measure else f"{representation}, static"
    ax.set_xlabel(f"representation bias B = log2(M / M_rnd)  [{what}]", fontsize=8)
    ax.set_ylabel(f"transfer ratio {method_a} / {method_b}", fontsize=8)
    left_out = sorted(set(table["task"]) - set(finite["task"]))
    if left_out:  # B = −∞ (probe at 0 %) or an undefined ratio
        ax.text(0.01, 0.01, f"not shown (B or ratio undefined): {', '.join(left_out)}", transform=ax.transAxes,
                fontsize=6, va="bottom")
    ax.set_title("transfer ratio vs. representation bias (> 1: A better)", fontsize=9)
    ax.legend(fontsize=7, loc="best")
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


def _image_spec(cfg: dict, info: dict, clip: dict, segments: int | None, frames_per_segment: int | None):
    """The TSN clip of the imagenet-tsn measure: the bias file's values, command-line overrides on top; a changed
    crop alone keeps the resize/crop ratio."""
    from .features import tsn_spec

    sampling, inp = dict(cfg.get("sampling") or {}), dict(cfg.get("input") or {})
    crop = clip.get("crop") or inp.get("crop")
    if clip.get("resize"):
        resize = clip["resize"]
    elif clip.get("crop") and inp.get("resize") and inp.get("crop"):
        resize = int(round(int(inp["resize"]) * int(clip["crop"]) / int(inp["crop"])))
    else:
        resize = inp.get("resize")
    if not (crop and resize):
        raise SevereError("the bias protocol names no input resize/crop (tasks/_bias.yaml input:)")
    return tsn_spec(segments or sampling.get("segments", 8), frames_per_segment or sampling.get("frames_per_segment", 1),
                    resize=resize, crop=crop, normalisation=info.get("normalisation") or {})


def default_representation() -> str:
    """The representation of the published definition (``tasks/_bias.yaml``: ImageNet ResNet-18)."""
    return str(bias_protocol(None).get("representation") or "imagenet_resnet18")


def measure_bias(task_ids: list[str], representation: str | None, out_cache: Path, *, measure: str = IMAGENET_TSN,
                 arch: str | None = None, trust: bool = False, mode: str = "static", layer: str | None = None,
                 data_root=None, profile: str = "full", max_train: int | None = None, max_test: int | None = None,
                 weight_decay: float | None = None, extract_batch_size: int = 8, workers: int = 0,
                 device: str = "auto", clip: dict | None = None, seed: int = 0, segments: int | None = None,
                 frames_per_segment: int | None = None, probe_epochs: int | None = None,
                 log=print) -> tuple[pd.DataFrame, dict]:
    """Per task: linear-probe top-1 M on the ``measure``'s features and B = log2(M / M_rnd).

    ``imagenet-tsn``: ``representation`` (default: the bias file's, ImageNet ResNet-18) must be a 2D image model;
    frames and probe come from the bias protocol (``segments``/``frames_per_segment``/``clip``/``probe_epochs``/
    ``weight_decay`` override it). ``checkpoint-static``: ``representation`` is the video checkpoint under test,
    ``mode`` static (or video), ``clip`` optional ``frames``/``crop``/``resize`` overriding the task's test clip."""
    from .checkpoints import load_checkpoint
    from .data.subset import evenly_spaced
    from .engine.runner import pick_device
    from .features import clip_spec_for, extract_features, task_for
    from .models import backbone_spec
    from .registry import read_split, resolve_data_root

    if measure not in MEASURES:
        raise SevereError(f"unknown bias measure {measure!r}; choose {', '.join(MEASURES)}")
    image = measure == IMAGENET_TSN
    if image and (segments is not None and segments < 1 or frames_per_segment is not None and frames_per_segment < 1):
        raise SevereError("--segments and --frames-per-segment must be >= 1")
    if not image and (segments or frames_per_segment or probe_epochs):
        raise SevereError("--segments/--frames-per-segment/--probe-epochs belong to --measure imagenet-tsn")
    if representation is None:
        if not image:
            raise SevereError("--measure checkpoint-static needs --representation (the checkpoint under test)")
        representation = default_representation()
    clip = dict(clip or {})
    if image and clip.get("frames"):
        raise SevereError("--frames is for --measure checkpoint-static; the TSN frames are --segments x "
                          "--frames-per-segment")
    dev = pick_device(device)
    torch.manual_seed(seed)  # a "scratch" representation is the same random net on every run
    loaded = load_checkpoint(representation, arch=arch, trust=trust, count_flops=False)
    family = backbone_spec(loaded.info["architecture"]).family
    if image and family != "image":
        raise SevereError(f"--measure imagenet-tsn needs a 2D image representation (imagenet_resnet18, "
                          f"imagenet_resnet50 or a torchvision ResNet-18/50 file); {representation!r} is a "
                          f"{loaded.info['architecture']}. For a video checkpoint on still frames use "
                          "--measure checkpoint-static")
    if not image and family == "image":
        raise SevereError(f"{representation!r} is a 2D image model: use --measure imagenet-tsn")
    names = list(loaded.backbone.layer_names)
    layer = layer or names[-1]
    if layer not in names:
        raise SevereError(f"unknown layer {layer!r}; this backbone has: {', '.join(names)}")
    if image:  # "ImageNet ResNet-18" for the registry entries, the file's name otherwise
        label = str(loaded.info.get("label") or loaded.info.get("name"))
    else:
        label = str(loaded.info.get("name") or Path(representation).stem)
    feature_mode = "tsn" if image else mode
    tasks = [task_for(t, profile, loaded.info.get("architecture")) for t in task_ids]  # fail fast on unknown ids
    prepared = []  # every task's data is read and checked before any (slow) feature extraction
    for task in tasks:
        root = resolve_data_root(task, data_root)
        train = evenly_spaced(read_split(task, root, "train"), max_train)
        test = evenly_spaced(read_split(task, root, "test"), max_test)
        if not all(isinstance(s.label, (int, np.integer)) for s in train + test):
            raise SevereError(f"task {task.id}: representation bias needs single-label classification "
                              f"(this task's labels are {type((train + test)[0].label).__name__})")
        if image:
            cfg = bias_protocol(task)
            spec = _image_spec(cfg, loaded.info, clip, segments, frames_per_segment)
            probe_cfg = {k: cfg.get("probe", {}).get(k) for k in PROBE_KEYS}
            if probe_epochs:
                probe_cfg["epochs"] = int(probe_epochs)
            if weight_decay is not None:
                probe_cfg["weight_decay"] = float(weight_decay)
            missing = [k for k, v in probe_cfg.items() if v is None]
            if missing:
                raise SevereError(f"task {task.id}: the bias protocol's probe lacks {', '.join(missing)}")
        else:
            spec, probe_cfg = clip_spec_for(task, loaded.info, **clip), {"method": "lbfgs", "weight_decay": weight_decay}
        prepared.append((task, root, train, test, _num_classes(task, root, train + test, log), spec, probe_cfg))
    rows = []
    for task, root, train, test, num_classes, spec, probe_cfg in prepared:
        feats = {}
        for split, samples in (("train", train), ("test", test)):
            fs = extract_features(loaded, task, root, samples, [layer], out_cache, split=split, mode=feature_mode,
                                  spec=spec, batch_size=extract_batch_size, workers=workers, device=dev, label=label,
                                  log=log)
            feats[split] = (fs.array(layer), np.array([s.label for s in samples]), len(fs.failed))
        args = (feats["train"][0], feats["train"][1], feats["test"][0], feats["test"][1], num_classes)
        if image:
            probe = sgd_probe(*args, **probe_cfg, device=str(dev), seed=seed)
        else:
            probe = linear_probe(*args, weight_decay=weight_decay, device=str(dev), seed=seed)
        b = representation_bias(probe.top1, num_classes)
        log(f"bias {task.id} [{measure}, {label}]: probe top-1 {probe.top1:.2f}% over {num_classes} classes "
            f"-> B = {b:.3f}")
        values = {"clip": spec.as_dict(), "mode": feature_mode, "layer": layer, "probe": probe_cfg,
                  "max_train": max_train, "max_test": max_test, "profile": profile}
        rows.append({"task": task.id, "dataset": task.dataset.get("name"), "measure": measure,
                     "representation": label, "num_classes": num_classes,
                     "chance_top1": chance_accuracy(num_classes), "probe_top1": probe.top1, "bias": b,
                     "probe": probe.method, "weight_decay": probe.weight_decay, "num_train": probe.num_train,
                     "num_test": probe.num_test, "unreadable_train": feats["train"][2],
                     "unreadable_test": feats["test"][2],
                     "bias_hash": bias_hash(task, measure, values, loaded.info.get("sha256"))})
    first_spec, first_probe = prepared[0][5], prepared[0][6]
    meta = {"measure": {"name": measure, "label": measure_label(measure, label), "description": MEASURES[measure]},
            "representation": {"spec": representation, "label": label, "sha256": loaded.info.get("sha256"),
                               "architecture": loaded.info.get("architecture"), "source": loaded.info.get("source")},
            "mode": feature_mode, "layer": layer, "profile": profile, "clip": first_spec.as_dict() if image else clip,
            "probe": first_probe, "max_train": max_train, "max_test": max_test,
            # the published definition with nothing overridden: numbers that may stand beside Table 4.2's
            "comparable_with_published": bool(
                image and representation == default_representation() and profile == "full" and not clip
                and segments is None and frames_per_segment is None and probe_epochs is None
                and weight_decay is None and max_train is None and max_test is None),
            "formula": "B = log2(M / M_rnd), M_rnd = 100 / C"}
    return pd.DataFrame(rows), meta
