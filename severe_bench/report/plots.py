"""Figures for a paper, each saved as PNG and PDF (matplotlib, no pyplot state).

* ``factor_bars``: one panel per task, grouped by factor (columns), bars per method with ± std over seeds;
* ``sample_curves``: metric against the number of fine-tuning samples, one panel per dataset and protocol;
* ``scatter_vs_ucf101``: each task against UCF101 with Pearson r and Kendall τ (also written as csv);
* ``summary``: one page per evaluated checkpoint: its numbers, protocols, and where it sits among the other rows.
"""

from __future__ import annotations

import math
import textwrap
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from ..errors import SevereError
from .aggregate import SevereTable
from .layout import Column


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """``out_dir/stem.png`` (150 dpi) and ``out_dir/stem.pdf``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        p = out_dir / f"{stem}.{ext}"
        fig.savefig(p, dpi=150 if ext == "png" else None, bbox_inches="tight")
        paths.append(p)
    return paths


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "method"


def _ylabel(col: Column) -> str:
    return ("counting error ↓" if col.metric == "counting_error"
            else f"{col.metric.replace('_', ' ')} ({col.unit})")


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(i % cmap.N) for i in range(n)]


# --- per-factor bars -----------------------------------------------------------------------------------

def factor_bars(table: SevereTable, out_dir: Path) -> list[Path]:
    groups: dict[str, list[Column]] = {}
    for col in table.columns:
        groups.setdefault(col.group, []).append(col)
    n_rows = max(len(c) for c in groups.values())
    labels = table.labels
    width = max(3.2, 0.28 * len(labels) + 1.0)
    fig = Figure(figsize=(width * len(groups), 3.0 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, len(groups), squeeze=False)
    colors = _colors(len(labels))
    for j, (group, cols) in enumerate(groups.items()):
        for i in range(n_rows):
            ax = axes[i][j]
            if i >= len(cols):
                ax.set_visible(False)
                continue
            col = cols[i]
            values = table.mean[col.task].to_numpy(dtype=float)
            errors = np.nan_to_num(table.std[col.task].to_numpy(dtype=float))
            x = np.arange(len(labels))
            ax.bar(x, np.nan_to_num(values), yerr=errors, color=colors, capsize=2, edgecolor="black", linewidth=0.3)
            for xi, v in zip(x, values):
                if np.isnan(v):
                    ax.text(xi, 0.03, "n/a", ha="center", va="bottom", fontsize=6, rotation=90,
                            transform=ax.get_xaxis_transform())
            ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
            ax.set_title(f"{group}: {col.title}", fontsize=9)
            ax.set_ylabel(_ylabel(col), fontsize=8)
            finite = values[~np.isnan(values)]
            if len(finite):
                lo, hi = finite.min(), finite.max()
                pad = 0.15 * (hi - lo) + 1e-9
                ax.set_ylim(max(0.0, lo - pad - errors.max()), hi + pad + errors.max())
    fig.suptitle("SEVERE results per factor (mean ± std over seeds)", fontsize=10)
    return save_figure(fig, out_dir, "factor_bars")


# --- sample-size curves --------------------------------------------------------------------------------

def sample_curves(observations: pd.DataFrame, out_dir: Path) -> list[Path]:
    user = observations[(observations["provenance"] == "user") & observations["num_train"].notna()].copy()
    user["dataset"] = user["dataset"].fillna(user["task"])
    curves = []
    for key, rows in user.groupby(["dataset", "protocol_name", "metric"], dropna=False):
        if rows["num_train"].nunique() >= 2:
            curves.append((key, rows))
    if not curves:
        raise SevereError("sample-curve needs results of one dataset and protocol at two or more training-set sizes "
                          "(data.num_train), e.g. ucf101_1k and ucf101")
    fig = Figure(figsize=(4.2 * len(curves), 3.4), layout="constrained")
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, ((dataset, protocol, metric), rows) in zip(axes, curves):
        methods = list(dict.fromkeys(rows["method"]))
        for method, color in zip(methods, _colors(len(methods))):
            m = rows[rows["method"] == method]
            agg = m.groupby("num_train")["value"].agg(["mean", "std", "count"]).sort_index()
            ax.errorbar(agg.index.to_numpy(dtype=float), agg["mean"], yerr=agg["std"].fillna(0.0), marker="o",
                        ms=4, capsize=2, label=method, color=color)
        ax.set_xscale("log")
        ax.set_xlabel("fine-tuning samples")
        unit = rows["unit"].iloc[0]
        ax.set_ylabel(metric.replace("_", " ") + (" ↓" if metric == "counting_error" else f" ({unit})"))
        ax.set_title(f"{dataset} ({protocol})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, out_dir, "sample_curves")


# --- each task against UCF101 --------------------------------------------------------------------------

def correlations_vs_ucf101(table: SevereTable) -> pd.DataFrame:
    """Pearson r and Kendall τ between UCF101 and each other task over the rows that have both."""
    if "ucf101" not in table.mean.columns:
        raise SevereError("scatter needs UCF101 results (task ucf101) for the x axis; add them or --with-reference")
    out = []
    for col in table.columns:
        if col.task == "ucf101":
            continue
        both = table.mean[["ucf101", col.task]].dropna()
        if len(both) < 3:
            continue
        r, r_p = stats.pearsonr(both["ucf101"], both[col.task])
        tau, tau_p = stats.kendalltau(both["ucf101"], both[col.task])
        out.append({"task": col.task, "title": col.title, "n": len(both), "pearson_r": r, "pearson_p": r_p,
                    "kendall_tau": tau, "kendall_p": tau_p, "higher_is_better": col.higher_is_better})
    if not out:
        raise SevereError("scatter needs at least 3 methods with UCF101 and another task")
    return pd.DataFrame(out)


def scatter_vs_ucf101(table: SevereTable, out_dir: Path) -> list[Path]:
    corr = correlations_vs_ucf101(table)
    cols = {c.task: c for c in table.columns}
    n = len(corr)
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.6 * ncols, 3.3 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, rec in zip(axes, corr.itertuples()):
        both = table.mean[["ucf101", rec.task]].dropna()
        ax.scatter(both["ucf101"], both[rec.task], s=16, color="tab:blue")
        for label, (x, y) in both.iterrows():
            ax.annotate(label, (x, y), fontsize=5, xytext=(2, 2), textcoords="offset points")
        ax.set_xlabel("UCF101 top-1 (%)", fontsize=8)
        ax.set_ylabel(_ylabel(cols[rec.task]), fontsize=8)
        ax.set_title(f"{rec.title}: Pearson r = {rec.pearson_r:.2f}, Kendall τ = {rec.kendall_tau:.2f}", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[n:]:
        ax.set_visible(False)
    paths = save_figure(fig, out_dir, "scatter_vs_ucf101")
    csv_path = out_dir / "scatter_vs_ucf101.csv"
    corr.to_csv(csv_path, index=False, float_format="%.6g")
    return paths + [csv_path]


# --- one page per checkpoint ---------------------------------------------------------------------------

def _summary_page(table: SevereTable, observations: pd.DataFrame, label: str) -> Figure:
    method = table.rows.at[label, "method"]
    obs = observations[(observations["method"] == method) & (observations["provenance"] == "user")]
    first = obs.iloc[0]
    fig = Figure(figsize=(8.27, 11.69), layout="constrained")  # A4 portrait
    gs = fig.add_gridspec(3, 1, height_ratios=[0.9, 1.4, 2.2])
    head = fig.add_subfigure(gs[0])
    lines = [f"{label}",
             f"architecture: {first['architecture'] or '?'}    checkpoint: {first['checkpoint'] or '?'}"
             f"    sha256: {str(first['checkpoint_sha256'] or '?')[:16]}",
             f"code: {', '.join(sorted(set(obs['code_version'].dropna().astype(str)))) or '?'}    "
             f"results: {len(obs)} files, seeds {sorted(set(obs['seed'].dropna().astype(int)))}"]
    if pd.notna(table.severe_mean.get(label, np.nan)):
        lines.append(f"SEVERE mean {table.severe_mean[label]:.1f}    average rank {table.avg_rank[label]:.2f} "
                     f"of {len(table.labels)} ({table.tie_rule} tie rule)")
    if not bool(table.rows.at[label, "comparable"]):
        lines.append("‡ includes smoke-profile results: not comparable with published numbers")
    head.text(0.02, 0.95, lines[0], fontsize=14, weight="bold", va="top")
    head.text(0.02, 0.72, "\n".join(lines[1:]), fontsize=8, va="top", family="monospace")

    ax_tab = fig.add_subfigure(gs[1]).subplots()
    ax_tab.axis("off")
    cells, row_labels = [], []
    for col in table.columns:
        v = table.mean.at[label, col.task]
        if pd.isna(v):
            continue
        s = table.std.at[label, col.task]
        p = table.protocols.get(col.task, {})
        rank = table.task_ranks.at[label, col.task] if col.task in table.task_ranks.columns else np.nan
        others = table.mean[col.task].drop(label).dropna()
        cells.append([f"{v:.{col.decimals}f}" + (f" ± {s:.{col.std_decimals}f}" if pd.notna(s) else ""),
                      f"{int(table.n.at[label, col.task])}" if pd.notna(table.n.at[label, col.task]) else "",
                      f"{rank:g}/{int(table.mean[col.task].notna().sum())}" if pd.notna(rank) else "",
                      f"{others.min():.{col.decimals}f}–{others.max():.{col.decimals}f}" if len(others) else "",
                      f"{p.get('name', '')}/{p.get('profile', '')}", str(p.get("hash", ""))])
        row_labels.append(f"{col.title} {col.arrow}".strip())
    tab = ax_tab.table(cellText=cells, rowLabels=row_labels, loc="upper center",
                       colLabels=["mean ± std", "seeds", "rank", "others (min–max)", "protocol", "hash"])
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.auto_set_column_width(list(range(len(cells[0]) if cells else 0)))  # long protocol names fit
    tab.scale(1.0, 1.3)

    tasks = [c for c in table.columns if pd.notna(table.mean.at[label, c.task])]
    strip = fig.add_subfigure(gs[2])
    ncols = 4
    axes = strip.subplots(max(1, math.ceil(len(tasks) / ncols)), ncols, squeeze=False).ravel()
    for ax, col in zip(axes, tasks):
        values = table.mean[col.task].dropna()
        others = values.drop(label)
        jitter = np.linspace(-0.15, 0.15, len(others)) if len(others) else []
        ax.scatter(jitter, others.to_numpy(), color="0.6", s=12, label="other rows")
        ax.scatter([0], [values[label]], color="tab:red", s=40, marker="D", label=label, zorder=3)
        ax.set_xlim(-0.5, 0.5)
        ax.set_xticks([])
        ax.set_title(textwrap.fill(f"{col.group}: {col.title} {col.arrow}".strip(), 24), fontsize=8)
        ax.tick_params(labelsize=7)
        if not col.higher_is_better:
            ax.invert_yaxis()  # better is up everywhere
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    strip.suptitle("this checkpoint (red) among the other rows of the table (grey); better is up", fontsize=8)
    return fig


def summaries(table: SevereTable, observations: pd.DataFrame, out_dir: Path) -> list[Path]:
    user_labels = [lab for lab in table.labels if table.rows.at[lab, "provenance"] == "user"]
    if not user_labels:
        raise SevereError("summary needs result JSONs of at least one checkpoint")
    paths = []
    for label in user_labels:
        paths += save_figure(_summary_page(table, observations, label), out_dir, f"summary_{slug(label)}")
    return paths


# --- CKA heatmaps --------------------------------------------------------------------------------------

def cka_heatmap(matrix: np.ndarray, row_labels: list[str], col_labels: list[str], title: str, out_dir: Path,
                stem: str, row_axis: str = "", col_axis: str = "") -> list[Path]:
    """A CKA matrix as an annotated heatmap (0..1, viridis)."""
    size = max(len(row_labels), len(col_labels))
    fig = Figure(figsize=(1.6 + 0.7 * max(size, 3), 1.2 + 0.6 * max(size, 3)), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", origin="lower")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(row_labels)), row_labels, fontsize=8)
    ax.set_xlabel(col_axis, fontsize=8)
    ax.set_ylabel(row_axis, fontsize=8)
    if size <= 16:
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                v = matrix[i, j]
                ax.text(j, i, "nan" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if not np.isnan(v) and v < 0.6 else "black")
    fig.colorbar(im, ax=ax, label="CKA")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, out_dir, stem)
