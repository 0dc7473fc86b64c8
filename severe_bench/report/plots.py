"""Figures for a paper, each saved as PNG (200 dpi) and vector PDF, in one style (``report/style.py``).

* ``factor_bars``: small multiples, one panel per task coloured by its factor, one horizontal bar per method
  (± std over seeds); the method axis is shared along a row, so names are printed once per row;
* ``sample_curves``: metric against the number of fine-tuning samples, one panel per dataset and protocol;
* ``scatter_vs_ucf101``: each task against UCF101 with Pearson r and Kendall τ (also written as csv);
  labels are pushed apart (adjustText) so none overlaps another or a point;
* ``summary``: one page per evaluated checkpoint: its numbers, protocols, and where it sits among the other rows.

Published rows are drawn light and open, the user's own results solid with a dark edge, everywhere.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator
from scipy import stats

from ..errors import SevereError
from .aggregate import SevereTable
from .labels import place_labels
from .layout import Column
from .style import (HIGHLIGHT, PAGE_WIDTH, PUBLISHED_GREY, USER_EDGE, factor_color, light, method_colors,
                    paper_style, plain_axis, styled)

PNG_DPI = 200


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """``out_dir/stem.png`` and ``out_dir/stem.pdf`` (vector, TrueType text), cropped to their content; each
    written atomically (an interrupted save never leaves half a figure)."""
    from ..atomic import atomic_write

    paths = []
    with paper_style():
        for ext in ("png", "pdf"):
            p = out_dir / f"{stem}.{ext}"
            # the temporary's name ends in .tmp: the format is given, not guessed from it
            atomic_write(p, lambda tmp, ext=ext: fig.savefig(tmp, format=ext, dpi=PNG_DPI if ext == "png" else None,
                                                             bbox_inches="tight", pad_inches=0.03, facecolor="white"))
            paths.append(p)
    return paths


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "method"


_METRIC_LABELS = {"top1": "top-1", "top5": "top-5", "mean_class_accuracy": "mean class acc.", "map": "mAP"}


def metric_label(col: Column) -> str:
    """Short axis label: ``top-1 (%)``, ``mAP (%)``, ``counting error ↓``."""
    if col.metric == "counting_error":
        return "counting error ↓"
    name = _METRIC_LABELS.get(col.metric, col.metric.replace("_", " "))
    unit = f" ({col.unit})" if col.unit and col.unit != "fraction" else ""
    return f"{name}{unit}{' ↓' if not col.higher_is_better else ''}"


_FACTOR_GROUPS = {"domain": "Domains", "samples": "Samples", "actions": "Actions", "task": "Tasks"}


def colour_group(col: Column) -> str:
    """The factor whose colour a column takes: its SEVERE group, or for another task the factor its task file
    names (hmdb51: domain, synth_count: task), so every figure colours one factor alike."""
    if col.group != "Other":
        return col.group
    try:
        from ..registry import get_task

        return _FACTOR_GROUPS.get(str(get_task(col.task).factor), "Other")
    except Exception:  # a task the registry does not know (e.g. from another installation): no factor
        return "Other"


def _is_user(table: SevereTable) -> np.ndarray:
    return (table.rows["provenance"] == "user").to_numpy()


def _row_names(table: SevereTable) -> list[str]:
    """Row labels; rows with smoke-profile results carry the table's ‡ mark."""
    return [f"{lab} ‡" if not bool(table.rows.at[lab, "comparable"]) else lab for lab in table.labels]


def _provenance_handles(group: str, has_user: bool, has_published: bool) -> list:
    color = factor_color(group)
    out = []
    if has_published:
        out.append(Patch(facecolor=light(color), edgecolor=color, linewidth=0.6, label="published"))
    if has_user:
        out.append(Patch(facecolor=color, edgecolor=USER_EDGE, linewidth=0.6, label="this evaluation"))
    return out


def _label_width_in(labels: list[str], fontsize: float = 6.5) -> float:
    """Rough width (inches) of the longest tick label: ~0.55 em per character."""
    return max((len(s) for s in labels), default=4) * fontsize * 0.55 / 72 + 0.12


# --- per-factor bars -----------------------------------------------------------------------------------

MAX_PANELS_PER_ROW = 6


def _bar_range(values: np.ndarray, errors: np.ndarray) -> tuple[float, float]:
    top = np.nanmax(values + errors) if np.isfinite(values).any() else 1.0
    return 0.0, (top * 1.08 if top > 0 else 1.0)


def _sections(table: SevereTable) -> list[tuple[list[Column], list[int]]]:
    """Panels grouped so that no panel carries rows it has no value for: the columns with published numbers
    (rows: every row with a value in any of them), then the columns only the user's results have (rows: those
    results). Each section is a list of columns and the row indices it shows."""
    user = _is_user(table)
    published_cols = [c for c in table.columns if table.mean[c.task][~user].notna().any()]
    own_cols = [c for c in table.columns if c not in published_cols]
    out = []
    for cols in (published_cols, own_cols):
        if cols:
            have = table.mean[[c.task for c in cols]].notna().any(axis=1).to_numpy()
            out.append((cols, [i for i in range(len(table.labels)) if have[i]]))
    return out


def _panel_width(cols: list[Column]) -> float:
    return max(1.05, 0.07 * max(len(c.title) for c in cols) + 0.15)  # titles stay inside their panel


@styled
def factor_bars_figure(table: SevereTable) -> Figure:
    names_all = _row_names(table)
    user_all = _is_user(table)
    sections = _sections(table)
    label_w = _label_width_in([names_all[i] for _, rows in sections for i in rows])
    layout = []
    for cols, rows in sections:
        grid_rows = math.ceil(len(cols) / MAX_PANELS_PER_ROW)
        per_row = math.ceil(len(cols) / grid_rows)  # balanced rows: 9 panels as 5 + 4, not 6 + 3
        layout.append((cols, rows, grid_rows, per_row, 0.13 * len(rows) + 0.62))
    width = label_w + max(per_row * _panel_width(cols) for cols, _, _, per_row, _ in layout) + 0.2
    heights = [grid_rows * panel_h for _, _, grid_rows, _, panel_h in layout]
    legend_h = 0.32
    fig = Figure(figsize=(width, legend_h + sum(heights)), layout="constrained")
    FigureCanvasAgg(fig)
    subfigs = fig.subfigures(len(layout), 1, height_ratios=heights, squeeze=False).ravel()
    for sub, (cols, rows, grid_rows, per_row, _) in zip(subfigs, layout):
        names = [names_all[i] for i in rows]
        user = user_all[rows]
        axes = sub.subplots(grid_rows, per_row, squeeze=False, sharey=True)
        y = np.arange(len(rows))
        for k, ax in enumerate(axes.ravel()):
            if k >= len(cols):
                ax.set_visible(False)
                continue
            _bar_panel(ax, table, cols[k], rows, user, y)
        axes[0][0].set_ylim(len(rows) - 0.5, -0.5)  # first row at the top (shared by the section's panels)
        for row in axes:
            row[0].set_yticks(y, names)
            for tick, u in zip(row[0].get_yticklabels(), user):
                tick.set_fontweight("bold" if u else "normal")
                tick.set_color(USER_EDGE if u else "#404040")
    groups = list(dict.fromkeys(colour_group(c) for c in table.columns))
    handles = [Patch(facecolor=factor_color(g), edgecolor="none", label=g) for g in groups]
    handles += _provenance_handles("Existing", bool(user_all.any()), bool((~user_all).any()))
    handles.append(Line2D([], [], color=USER_EDGE, lw=0.5, marker="|", markersize=4, label="± std over seeds"))
    if any(n.endswith("‡") for n in names_all):
        handles.append(Patch(facecolor="none", edgecolor="none", label="‡ smoke profile: not comparable"))
    fig.legend(handles=handles, loc="outside upper center", handlelength=1.2, columnspacing=1.0,
               ncols=len(handles) if len(handles) <= 7 else math.ceil(len(handles) / 2))
    return fig


def _bar_panel(ax, table: SevereTable, col: Column, rows: list[int], user: np.ndarray, y: np.ndarray) -> None:
    color = factor_color(colour_group(col))
    values = table.mean[col.task].to_numpy(dtype=float)[rows]
    errors = np.nan_to_num(table.std[col.task].to_numpy(dtype=float)[rows])
    have = ~np.isnan(values)
    face = np.array([color if u else light(color) for u in user], dtype=object)
    edge = np.array([USER_EDGE if u else color for u in user], dtype=object)
    ax.barh(y[have], values[have], xerr=errors[have], height=0.72, color=face[have].tolist(),
            edgecolor=edge[have].tolist(), linewidth=0.5,
            error_kw={"elinewidth": 0.5, "capsize": 1.2, "ecolor": USER_EDGE})
    for yi in y[~have]:  # no result for this row: a faint dash, never a zero-length bar
        ax.text(0.02, yi, "–", transform=ax.get_yaxis_transform(), va="center", ha="left", color="#B3B3B3",
                fontsize=6)
    ax.set_xlim(*_bar_range(values, errors))
    plain_axis(ax.xaxis, nbins=3)
    ax.xaxis.grid(True)
    ax.set_title(col.title, color=color, fontweight="bold", pad=3)
    ax.set_xlabel(metric_label(col), labelpad=1)
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)


def factor_bars(table: SevereTable, out_dir: Path) -> list[Path]:
    return save_figure(factor_bars_figure(table), out_dir, "factor_bars")


# --- sample-size curves --------------------------------------------------------------------------------

@styled
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
    methods = list(dict.fromkeys(m for _, rows in curves for m in rows["method"]))
    color_of = dict(zip(methods, method_colors(len(methods))))
    ncols = min(3, len(curves))
    nrows = math.ceil(len(curves) / ncols)
    fig = Figure(figsize=(0.3 + 2.3 * ncols, 0.35 + 1.9 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, ((dataset, protocol, metric), rows) in zip(axes, curves):
        for method in dict.fromkeys(rows["method"]):
            m = rows[rows["method"] == method]
            agg = m.groupby("num_train")["value"].agg(["mean", "std", "count"]).sort_index()
            ax.errorbar(agg.index.to_numpy(dtype=float), agg["mean"], yerr=agg["std"].fillna(0.0), marker="o",
                        ms=3, capsize=1.5, elinewidth=0.6, label=method, color=color_of[method])
        ax.set_xscale("log")
        # ticks at the training-set sizes themselves, written out (1000, 2000, 9537), not as powers of ten
        sizes = sorted(rows["num_train"].dropna().astype(int).unique())
        ax.set_xticks(sizes, [f"{n:d}" for n in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("fine-tuning samples")
        unit = rows["unit"].iloc[0]
        label = _METRIC_LABELS.get(metric, metric.replace("_", " "))
        ax.set_ylabel(label + (" ↓" if metric == "counting_error" else f" ({unit})"))
        plain_axis(ax.yaxis)
        ax.set_title(f"{dataset} ({protocol})")
        ax.grid(True)
    for ax in axes[len(curves):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=color_of[m], marker="o", ms=3, label=m) for m in methods]
    fig.legend(handles=handles, loc="outside upper center", ncols=min(len(methods), 5))
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


def _padded(lo: float, hi: float, frac: float = 0.08, frac_hi: float | None = None) -> tuple[float, float]:
    span = hi - lo if hi > lo else max(abs(hi), 1.0) * 0.1
    return lo - frac * span, hi + (frac if frac_hi is None else frac_hi) * span


@styled
def scatter_figure(table: SevereTable, corr: pd.DataFrame) -> Figure:
    cols = {c.task: c for c in table.columns}
    user_rows = set(table.rows.index[table.rows["provenance"] == "user"])
    n = len(corr)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    side = PAGE_WIDTH / 3 if ncols == 3 else 2.4  # room for a dozen labels per panel
    fig = Figure(figsize=(side * ncols, (side * 0.92 + 0.1) * nrows + 0.25), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for k, (ax, rec) in enumerate(zip(axes, corr.itertuples())):
        col = cols[rec.task]
        color = factor_color(colour_group(col))
        both = table.mean[["ucf101", rec.task]].dropna()
        mine = both.index.isin(list(user_rows))
        ax.scatter(both["ucf101"][~mine], both[rec.task][~mine], s=14, facecolor=light(color, 0.45),
                   edgecolor=color, linewidth=0.6, zorder=3)
        ax.scatter(both["ucf101"][mine], both[rec.task][mine], s=22, marker="D", facecolor=color,
                   edgecolor=USER_EDGE, linewidth=0.6, zorder=4)
        # room for labels: more on the right, where most of them go
        ax.set_xlim(*_padded(both["ucf101"].min(), both["ucf101"].max(), 0.1, 0.3))
        ax.set_ylim(*_padded(both[rec.task].min(), both[rec.task].max(), 0.14))
        plain_axis(ax.xaxis, nbins=5)
        plain_axis(ax.yaxis)
        ax.grid(True)
        ax.set_title(f"{col.title}\nr = {rec.pearson_r:.2f}, τ = {rec.kendall_tau:.2f} (n = {rec.n})",
                     color=color, fontsize=7.5, linespacing=1.25)
        ax.set_ylabel(metric_label(col), labelpad=1)
        if k >= n - ncols:  # bottom row of the used panels
            ax.set_xlabel("UCF101 top-1 (%)")
    for ax in axes[n:]:
        ax.set_visible(False)
    handles = [Line2D([], [], ls="", marker="o", ms=4, markerfacecolor=light("#4D4D4D", 0.45),
                      markeredgecolor="#4D4D4D", label="published")]
    if user_rows & set(table.mean[["ucf101"]].dropna().index):
        handles.append(Line2D([], [], ls="", marker="D", ms=4, markerfacecolor="#4D4D4D", markeredgecolor=USER_EDGE,
                              label="this evaluation"))
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), title=None)
    # labels last: their placement needs the final layout, which is frozen first
    fig.draw_without_rendering()
    fig.set_layout_engine("none")
    for ax, rec in zip(axes, corr.itertuples()):
        both = table.mean[["ucf101", rec.task]].dropna()
        texts = place_labels(ax, both["ucf101"], both[rec.task], list(both.index), marker_radius_pt=2.6,
                             fontsize=5.2, color="#333333", zorder=5)
        for t in texts:
            if t.get_text() in user_rows:
                t.set_fontweight("bold")
                t.set_color(USER_EDGE)
    return fig


def scatter_vs_ucf101(table: SevereTable, out_dir: Path) -> list[Path]:
    corr = correlations_vs_ucf101(table)
    paths = save_figure(scatter_figure(table, corr), out_dir, "scatter_vs_ucf101")
    csv_path = out_dir / "scatter_vs_ucf101.csv"
    corr.to_csv(csv_path, index=False, float_format="%.6g")
    return paths + [csv_path]


# --- one page per checkpoint ---------------------------------------------------------------------------

def _sha_line(first: pd.Series, obs: pd.DataFrame) -> str:
    shas = sorted(set(obs["checkpoint_sha256"].dropna().astype(str)))
    if shas:
        return "sha256: " + ", ".join(shas)
    if str(first.get("checkpoint") or "") == "scratch":
        return "sha256: none (scratch: random initialisation, no file)"
    return "sha256: not recorded in the results"


def _summary_cells(table: SevereTable, label: str):
    cells, row_labels, tasks = [], [], []
    for col in table.columns:
        v = table.mean.at[label, col.task]
        if pd.isna(v):
            continue
        s = table.std.at[label, col.task]
        p = table.protocols.get(col.task, {})
        rank = table.task_ranks.at[label, col.task] if col.task in table.task_ranks.columns else np.nan
        others = table.mean[col.task].drop(label).dropna()
        n = table.n.at[label, col.task]
        cells.append([f"{v:.{col.decimals}f}" + (f" ± {s:.{col.std_decimals}f}" if pd.notna(s) else ""),
                      f"{int(n)}" if pd.notna(n) else "",
                      f"{rank:g}/{int(table.mean[col.task].notna().sum())}" if pd.notna(rank) else "",
                      f"{others.min():.{col.decimals}f}–{others.max():.{col.decimals}f}" if len(others) else "",
                      f"{p.get('name', '')}/{p.get('profile', '')}", str(p.get("hash", ""))])
        row_labels.append(f"{col.title} {col.arrow}".strip())
        tasks.append(col)
    return cells, row_labels, tasks


@styled
def summary_figure(table: SevereTable, observations: pd.DataFrame, label: str) -> Figure:
    """One checkpoint: what was run (header), its numbers (table) and where it sits (strips); sized to fit."""
    method = table.rows.at[label, "method"]
    obs = observations[(observations["method"] == method) & (observations["provenance"] == "user")]
    first = obs.iloc[0]
    seeds = sorted(set(obs["seed"].dropna().astype(int)))
    lines = [f"architecture: {first['architecture'] or '?'}    checkpoint: {first['checkpoint'] or '?'}",
             _sha_line(first, obs),
             f"code: {', '.join(sorted(set(obs['code_version'].dropna().astype(str)))) or '?'}    "
             f"results: {len(obs)} files, seeds {seeds}"]
    if pd.notna(table.severe_mean.get(label, np.nan)):
        lines.append(f"SEVERE mean {table.severe_mean[label]:.1f}    average rank {table.avg_rank[label]:.2f} "
                     f"of {len(table.labels)} ({table.tie_rule} tie rule)")
    if not bool(table.rows.at[label, "comparable"]):
        lines.append("‡ includes smoke-profile results: not comparable with published numbers")
    cells, row_labels, cell_cols = _summary_cells(table, label)
    # a strip only where there is something to compare with
    tasks = [c for c in cell_cols if table.mean[c.task].drop(label).notna().any()]
    ncols = min(4, max(1, len(tasks)))
    strip_rows = math.ceil(len(tasks) / ncols) if tasks else 0
    head_h = 0.3 + 0.145 * len(lines)
    tab_h = 0.17 * (len(cells) + 1) + 0.08
    strip_h = 1.45 * strip_rows + (0.25 if strip_rows else 0)
    fig = Figure(figsize=(PAGE_WIDTH, head_h + tab_h + strip_h), layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(3 if strip_rows else 2, 1, height_ratios=[head_h, tab_h] + ([strip_h] if strip_rows else []))
    head = fig.add_subfigure(gs[0])
    head.text(0.0, 1.0, label, fontsize=12, fontweight="bold", va="top", ha="left")
    head.text(0.0, 1.0 - 0.32 / head_h, "\n".join(lines), fontsize=6.5, va="top", ha="left", family="DejaVu Sans Mono",
              linespacing=1.35)

    ax_tab = fig.add_subfigure(gs[1]).subplots()
    ax_tab.axis("off")
    if cells:
        headers = ["mean ± std", "seeds", "rank", "others (min–max)", "protocol", "hash"]
        chars = [max(len(h), *(len(r[k]) for r in cells)) + 2 for k, h in enumerate(headers)]
        label_chars = max(len(r) for r in row_labels) + 2
        total = sum(chars) + label_chars
        tab = ax_tab.table(cellText=cells, rowLabels=row_labels, loc="upper left", cellLoc="left",
                           colLabels=headers, colWidths=[c / total for c in chars],
                           bbox=[label_chars / total, 0.0, 1 - label_chars / total, 1.0])
        tab.auto_set_font_size(False)
        tab.set_fontsize(6.5)
        for (r, c), cell in tab.get_celld().items():
            cell.set_linewidth(0.3)
            cell.set_edgecolor("#BFBFBF")
            if r == 0:
                cell.set_text_props(fontweight="bold")
            if c == -1 and r > 0:
                cell.get_text().set_color(factor_color(colour_group(cell_cols[r - 1])))
                cell.set_text_props(fontweight="bold")

    if strip_rows:
        strip = fig.add_subfigure(gs[2])
        axes = strip.subplots(strip_rows, ncols, squeeze=False).ravel()
        published = set(table.rows.index[table.rows["provenance"] == "published"])
        shown = set()
        for ax, col in zip(axes, tasks):
            color = factor_color(colour_group(col))
            values = table.mean[col.task].dropna()
            others = values.drop(label)
            pub, usr = others[others.index.isin(list(published))], others[~others.index.isin(list(published))]
            shown |= set(others.index)
            for series, kw in ((pub, {"marker": "o", "facecolor": "white", "edgecolor": PUBLISHED_GREY}),
                               (usr, {"marker": "s", "facecolor": "#BFBFBF", "edgecolor": "#595959"})):
                if len(series):
                    ax.scatter(np.linspace(-0.18, 0.18, len(series)), series.to_numpy(), s=11, linewidth=0.6, **kw)
            ax.scatter([0], [values[label]], color=HIGHLIGHT, s=34, marker="D", edgecolor=USER_EDGE, linewidth=0.6,
                       zorder=3)
            ax.set_xlim(-0.5, 0.5)
            ax.set_ylim(*_padded(values.min(), values.max(), 0.15))
            plain_axis(ax.yaxis)
            ax.yaxis.grid(True)
            ax.set_xticks([])
            ax.spines["bottom"].set_visible(False)
            ax.set_title(f"{col.title} {col.arrow}".strip(), color=color, fontweight="bold")
            ax.set_ylabel(metric_label(col).replace(" ↓", ""), labelpad=1)
            if not col.higher_is_better:
                ax.invert_yaxis()  # better is up everywhere
        for ax in axes[len(tasks):]:
            ax.set_visible(False)
        handles = [Line2D([], [], ls="", marker="D", ms=4.5, markerfacecolor=HIGHLIGHT, markeredgecolor=USER_EDGE,
                          label=label)]
        if shown & published:
            handles.append(Line2D([], [], ls="", marker="o", ms=4, markerfacecolor="white",
                                  markeredgecolor=PUBLISHED_GREY, label="published rows"))
        if shown - published:
            handles.append(Line2D([], [], ls="", marker="s", ms=4, markerfacecolor="#BFBFBF",
                                  markeredgecolor="#595959", label="other evaluated rows"))
        strip.legend(handles=handles, loc="outside upper center", ncols=len(handles), title="better is up")
    return fig


def summaries(table: SevereTable, observations: pd.DataFrame, out_dir: Path) -> list[Path]:
    user_labels = [lab for lab in table.labels if table.rows.at[lab, "provenance"] == "user"]
    if not user_labels:
        raise SevereError("summary needs result JSONs of at least one checkpoint")
    paths = []
    for label in user_labels:
        paths += save_figure(summary_figure(table, observations, label), out_dir, f"summary_{slug(label)}")
    return paths


# --- CKA heatmaps --------------------------------------------------------------------------------------

@styled
def cka_heatmap(matrix: np.ndarray, row_labels: list[str], col_labels: list[str], title: str, out_dir: Path,
                stem: str, row_axis: str = "", col_axis: str = "") -> list[Path]:
    """A CKA matrix as an annotated heatmap (0..1, viridis)."""
    size = max(len(row_labels), len(col_labels))
    fig = Figure(figsize=(1.4 + 0.42 * max(size, 3), 1.0 + 0.36 * max(size, 3)), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    im = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", origin="lower")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=45, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_xlabel(col_axis)
    ax.set_ylabel(row_axis)
    ax.spines[:].set_visible(False)
    if size <= 16:
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                v = matrix[i, j]
                ax.text(j, i, "nan" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if not np.isnan(v) and v < 0.6 else "black")
    fig.colorbar(im, ax=ax, label="CKA", shrink=0.8)
    ax.set_title(title)
    return save_figure(fig, out_dir, stem)
