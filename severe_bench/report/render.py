"""Render a SevereTable as Markdown, LaTeX (booktabs), CSV or HTML.

All formats show the same cells: ``mean ± std`` per task, best value in bold and the second best underlined
(italic in Markdown, which has no underline), the SEVERE mean and the average rank, and a caption that states the
mean rule, the tie rule, the protocols of the user columns and where published rows come from.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from itertools import groupby
from typing import Callable

import pandas as pd
from tabulate import tabulate

from .. import __version__
from .aggregate import TIE_RULES, SevereTable
from .latex import escape

MISSING = "–"
SMOKE_MARK = "‡"
INCOMPLETE_MARK = "†"
MEAN_DECIMALS = 1
RANK_DECIMALS = 2
FORMATS = ("md", "latex", "csv", "html")


@dataclass
class Cell:
    value: str  # "" when missing
    std: str  # "" when no std
    emphasis: str | None  # "best", "second" or None
    smoke: bool = False
    incomplete: bool = False  # computed on an incomplete dataset (PROTOCOL.md §2.2)
    rank_fraction: float | None = None  # 0 = best ... 1 = worst, for rank colours


@dataclass(frozen=True)
class CellMarkup:
    """How one format writes a cell: ``%s`` templates around the emphasised value and the std, the smoke mark,
    the text of a missing cell, and the escaping of the cell's own text."""

    missing: str
    best: str
    second: str
    std: str
    smoke: str
    escape: Callable[[str], str] = lambda text: text
    incomplete: str = INCOMPLETE_MARK


def _cell_text(cell: Cell, markup: CellMarkup) -> str:
    if not cell.value:
        return markup.missing
    v = markup.escape(cell.value)
    if cell.emphasis == "best":
        v = markup.best % v
    elif cell.emphasis == "second":
        v = markup.second % v
    if cell.std:
        v += markup.std % markup.escape(cell.std)
    return v + (markup.smoke if cell.smoke else "") + (markup.incomplete if cell.incomplete else "")


def _fmt(v: float, decimals: int) -> str:
    return "" if v is None or pd.isna(v) else f"{v:.{decimals}f}"


def _emphasis(shown: pd.Series, higher_is_better: bool) -> dict:
    """label -> "best"/"second" from the displayed values (ties share the emphasis)."""
    distinct = sorted(set(shown.dropna()), reverse=higher_is_better)
    out = {}
    for label, v in shown.items():
        if pd.isna(v):
            continue
        if v == distinct[0]:
            out[label] = "best"
        elif len(distinct) > 1 and v == distinct[1]:
            out[label] = "second"
    return out


def _rank_fraction(shown: pd.Series, higher_is_better: bool) -> dict:
    ranks = shown.rank(ascending=not higher_is_better, method="min")
    worst = ranks.max()
    return {k: (0.0 if worst <= 1 else (r - 1) / (worst - 1)) for k, r in ranks.items() if pd.notna(r)}


def with_aggregates(table: SevereTable) -> bool:
    return table.has_all_severe()


def cell_grid(table: SevereTable) -> dict[str, list[Cell]]:
    """label -> cells in column order (task columns, then mean and rank when the table has all eight)."""
    grid = {label: [] for label in table.labels}
    smoke = set(table.smoke_tasks())
    user = table.rows["provenance"] == "user"
    for col in table.columns:
        shown = table.displayed(col.task)
        emph = _emphasis(shown, col.higher_is_better)
        frac = _rank_fraction(shown, col.higher_is_better)
        for label in table.labels:
            v = table.mean.at[label, col.task]
            s = table.std.at[label, col.task]
            grid[label].append(Cell(
                value=_fmt(v, col.decimals), std=_fmt(s, col.std_decimals) if pd.notna(v) else "",
                emphasis=emph.get(label), smoke=bool(col.task in smoke and user[label] and pd.notna(v)),
                incomplete=(label, col.task) in table.incomplete and pd.notna(v), rank_fraction=frac.get(label)))
    if with_aggregates(table):
        mean_shown = table.severe_mean.round(MEAN_DECIMALS)
        rank_shown = table.avg_rank.round(RANK_DECIMALS)
        emph_m, emph_r = _emphasis(mean_shown, True), _emphasis(rank_shown, False)
        frac_m, frac_r = _rank_fraction(mean_shown, True), _rank_fraction(rank_shown, False)
        for label in table.labels:
            grid[label].append(Cell(_fmt(table.severe_mean[label], MEAN_DECIMALS), "", emph_m.get(label),
                                    rank_fraction=frac_m.get(label)))
            grid[label].append(Cell(_fmt(table.avg_rank[label], RANK_DECIMALS), "", emph_r.get(label),
                                    rank_fraction=frac_r.get(label)))
    return grid


def caption_sentences(table: SevereTable, second_style: str = "underlined") -> list[str]:
    """The caption as plain-text sentences (Unicode); LaTeX escapes them, HTML/Markdown print them."""
    n_rows = len(table.labels)
    has_user = (table.rows["provenance"] == "user").any()
    has_pub = (table.rows["provenance"] == "published").any()
    out = ["SEVERE benchmark."]
    if has_user:
        seeds = sorted({int(x) for x in table.n.to_numpy().ravel() if pd.notna(x)})
        out.append(f"Cells: mean ± sample std over seeds (n = {', '.join(map(str, seeds))}).")
    if has_pub:
        sources = sorted(set(table.rows.loc[table.rows["provenance"] == "published", "source"]))
        out.append("Published rows as reported (mean ± std over 3 seeds where given): "
                   + "; ".join(s.split(" (")[0] for s in sources) + ".")
    lower = [c.title for c in table.columns if not c.higher_is_better]
    if lower:
        out.append(f"↓ lower is better ({', '.join(lower)}: mean counting error).")
    if with_aggregates(table):
        out.append("Mean: arithmetic mean of the eight SEVERE tasks with UCF-RC entered as (1 − error) × 100.")
        out.append(f"Rank: average over the eight tasks of each method's rank among the {n_rows} methods of this "
                   f"table (1 = best), ranked on the displayed values; {TIE_RULES[table.tie_rule]}.")
    else:
        out.append("Mean and rank need all eight SEVERE tasks and are not shown.")
    if not all(c.in_severe for c in table.columns):
        extra = [c.title for c in table.columns if not c.in_severe]
        out.append(f"{', '.join(extra)}: not part of the mean or rank.")
    out.append(f"Best in bold, second best {second_style}.")
    smoke = table.smoke_tasks()
    if smoke:
        out.append(f"{SMOKE_MARK} smoke profile (not comparable with published numbers): {', '.join(smoke)}.")
    if table.incomplete:
        titles = {c.task: c.title for c in table.columns}
        cells = sorted(table.incomplete, key=lambda lt: (table.labels.index(lt[0]), lt[1]))
        out.append(f"{INCOMPLETE_MARK} computed on an incomplete dataset (lists differ from the official counts, or "
                   "videos missing or unreadable; see data.incomplete_reasons in the result): "
                   + ", ".join(f"{label} on {titles.get(task, task)}" for label, task in cells) + ".")
    if table.video_problems:
        titles = {c.task: c.title for c in table.columns}
        cells = sorted(table.video_problems, key=lambda lt: (table.labels.index(lt[0]), lt[1]))
        out.append("Test videos not scored (unreadable) or decoding short of their container (truncated): " + ", ".join(
            f"{label} on {titles.get(task, task)} {table.video_problems[(label, task)][0]} unreadable"
            + (f", {table.video_problems[(label, task)][1]} truncated" if table.video_problems[(label, task)][1]
               else "") for label, task in cells) + ".")
    if table.protocols:
        by_protocol: dict = {}
        for col in table.columns:  # column order; tasks sharing a protocol listed together
            p = table.protocols.get(col.task)
            if p:
                by_protocol.setdefault((p["name"], p["profile"], p["hash"]), []).append(col.task)
        out.append("Protocols of the evaluated rows: " + "; ".join(
            f"{name}/{profile} {h} ({', '.join(tasks)})" for (name, profile, h), tasks in by_protocol.items()) + ".")
    return out


def _headers(table: SevereTable) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """(group title, span) over the columns, and (plain, latex) column titles; mean/rank at the end."""
    groups = [(g, len(list(cols))) for g, cols in groupby(table.columns, key=lambda c: c.group)]
    titles = [(c.title + (f" {c.arrow}" if c.arrow else ""),
               c.latex_title + (r"$\downarrow$" if c.arrow else "")) for c in table.columns]
    if with_aggregates(table):
        groups += [("", 1), ("", 1)]
        titles += [("Mean", "Mean"), ("Rank ↓", r"Rank$\downarrow$")]
    return groups, titles


# --- Markdown ------------------------------------------------------------------------------------------

MARKDOWN_CELL = CellMarkup(missing=MISSING, best="**%s**", second="_%s_", std=" ± %s", smoke=SMOKE_MARK)


def render_markdown(table: SevereTable) -> str:
    groups, titles = _headers(table)
    group_of_col = [g for g, span in groups for _ in range(span)]
    headers = ["Method"] + [f"{g}: {t}" if g else t for g, (t, _) in zip(group_of_col, titles)]
    grid = cell_grid(table)
    rows = [[label] + [_cell_text(c, MARKDOWN_CELL) for c in grid[label]] for label in table.labels]
    body = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
    return body + "\n\n" + " ".join(caption_sentences(table, "in italics")) + "\n"


# --- LaTeX ---------------------------------------------------------------------------------------------

def _rank_rgb(fraction: float) -> tuple[int, int, int]:
    """Paper-style rank colour: blue (best) through pale yellow to red (worst), lightened for legibility."""
    stops = [(0.0, (69, 117, 180)), (0.5, (255, 255, 191)), (1.0, (215, 48, 39))]
    for (f0, c0), (f1, c1) in zip(stops, stops[1:]):
        if fraction <= f1:
            t = 0.0 if f1 == f0 else (fraction - f0) / (f1 - f0)
            rgb = [a + (b - a) * t for a, b in zip(c0, c1)]
            break
    return tuple(int(round(0.55 * x + 0.45 * 255)) for x in rgb)


LATEX_CELL = CellMarkup(missing="--", best=r"\textbf{%s}", second=r"\underline{%s}", std=r"\,{\scriptsize$\pm$%s}",
                        smoke=r"$^\ddagger$", incomplete=r"$^\dagger$")


def _latex_cell(cell: Cell, rank_colors: bool) -> str:
    v = _cell_text(cell, LATEX_CELL)
    if cell.value and rank_colors and cell.rank_fraction is not None:
        r, g, b = _rank_rgb(cell.rank_fraction)
        v = rf"\cellcolor[RGB]{{{r},{g},{b}}}" + v
    return v


def render_latex(table: SevereTable, rank_colors: bool = False, standalone: bool = False,
                 tex_label: str = "tab:severe") -> str:
    groups, titles = _headers(table)
    ncols = 1 + len(titles)
    grid = cell_grid(table)
    out = io.StringIO()
    w = out.write
    if standalone:
        w("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
          + ("\\usepackage[table]{xcolor}\n" if rank_colors else "")
          + "\\usepackage[margin=1cm,landscape]{geometry}\n\\begin{document}\n")
    else:
        w(f"% generated by severe-bench {__version__} (severe table); needs \\usepackage{{booktabs}}"
          + (" and \\usepackage[table]{xcolor}" if rank_colors else "") + "\n")
    w("\\begin{table}[t]\n\\centering\n\\small\n")
    w(f"\\begin{{tabular}}{{l{'c' * (ncols - 1)}}}\n\\toprule\n")
    head, rules, start = [""], [], 2
    for g, span in groups:
        if g:
            head.append(rf"\multicolumn{{{span}}}{{c}}{{{escape(g)}}}" if span > 1 else escape(g))
            rules.append(rf"\cmidrule(lr){{{start}-{start + span - 1}}}")
        else:
            head.extend([""] * span)
        start += span
    w(" & ".join(head) + " \\\\\n")
    if rules:
        w("".join(rules) + "\n")
    w(" & ".join(["Method"] + [t for _, t in titles]) + " \\\\\n\\midrule\n")
    provenance = list(table.rows["provenance"])
    blocks = 1 + sum(a != b for a, b in zip(provenance, provenance[1:]))
    previous = None
    for label in table.labels:
        prov = table.rows.at[label, "provenance"]
        if blocks == 2 and previous is not None and prov != previous:  # published rows, then evaluated ones
            w("\\midrule\n")
        previous = prov
        w(" & ".join([escape(label)] + [_latex_cell(c, rank_colors) for c in grid[label]]) + " \\\\\n")
    w("\\bottomrule\n\\end{tabular}\n")
    w(f"\\caption{{{escape(' '.join(caption_sentences(table)))}}}\n\\label{{{escape(tex_label)}}}\n\\end{{table}}\n")
    if standalone:
        w("\\end{document}\n")
    return out.getvalue()


# --- CSV -----------------------------------------------------------------------------------------------

def render_csv(table: SevereTable) -> str:
    """Machine-readable: method, provenance, then ``<task>``/``<task>_std``/``<task>_n``, ``mean``, ``rank``."""
    frame = pd.DataFrame(index=table.labels)
    frame["method"] = table.labels
    frame["provenance"] = table.rows["provenance"]
    for col in table.columns:
        frame[col.task] = table.mean[col.task]
        frame[f"{col.task}_std"] = table.std[col.task]
        frame[f"{col.task}_n"] = table.n[col.task].astype("Int64")
    frame["mean"] = table.severe_mean
    frame["rank"] = table.avg_rank
    frame["comparable"] = table.rows["comparable"]
    frame["incomplete_data"] = [";".join(t for t in table.mean.columns if (label, t) in table.incomplete)
                                for label in table.labels]
    frame["unreadable_videos"] = [";".join(f"{t}={table.video_problems[(label, t)][0]}" for t in table.mean.columns
                                           if (label, t) in table.video_problems) for label in table.labels]
    frame["truncated_videos"] = [";".join(f"{t}={table.video_problems[(label, t)][1]}" for t in table.mean.columns
                                          if table.video_problems.get((label, t), (0, 0))[1]) for label in table.labels]
    frame["protocols"] = [
        ";".join(f"{t}={p['hash']}" for t, p in table.protocols.items() if pd.notna(table.mean.at[label, t]))
        if prov == "user" else "published"
        for label, prov in zip(table.labels, table.rows["provenance"])]
    frame["source"] = table.rows["source"]
    return frame.to_csv(index=False, float_format="%.6g", lineterminator="\n")


# --- HTML ----------------------------------------------------------------------------------------------

HTML_CELL = CellMarkup(missing=MISSING, best="<strong>%s</strong>", second="<u>%s</u>", std=" <small>± %s</small>",
                       smoke=SMOKE_MARK, escape=html.escape)


def render_html(table: SevereTable) -> str:
    groups, titles = _headers(table)
    grid = cell_grid(table)
    lines = ['<table class="severe-table">',
             f"<caption>{html.escape(' '.join(caption_sentences(table)))}</caption>", "<thead>", "<tr><th></th>"
             + "".join(f'<th colspan="{span}">{html.escape(g)}</th>' for g, span in groups) + "</tr>",
             "<tr><th>Method</th>" + "".join(f"<th>{html.escape(t)}</th>" for t, _ in titles) + "</tr>",
             "</thead>", "<tbody>"]
    for label in table.labels:
        prov = table.rows.at[label, "provenance"]
        lines.append(f'<tr class="{prov}"><th scope="row">{html.escape(label)}</th>'
                     + "".join(f"<td>{_cell_text(c, HTML_CELL)}</td>" for c in grid[label]) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines) + "\n"


def render(table: SevereTable, fmt: str, rank_colors: bool = False, standalone: bool = False) -> str:
    if fmt == "md":
        return render_markdown(table)
    if fmt == "latex":
        return render_latex(table, rank_colors=rank_colors, standalone=standalone)
    if fmt == "csv":
        return render_csv(table)
    if fmt == "html":
        return render_html(table)
    raise ValueError(f"unknown format {fmt!r}")


__all__ = ["render", "render_markdown", "render_latex", "render_csv", "render_html", "caption_sentences",
           "cell_grid", "FORMATS"]
