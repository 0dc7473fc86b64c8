"""``severe leaderboard build``: the board as a static site (HTML + JSON + CSV; no server, no external requests).

``index.html``: the SEVERE table (sortable by any column, per-factor views, backbone filter, paper links), the
partial entries, the official protocols; ``entries/<slug>.html`` (+ ``.json``): one page per entry with its
provenance; ``board.json`` / ``board.csv`` / ``partial.csv``: the same numbers for machines.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import pandas as pd

from .. import __version__
from ..provenance import code_version, utc_now
from ..report.aggregate import SevereTable
from ..report.layout import SEVERE_GROUPS, titles
from ..report.render import MEAN_DECIMALS, RANK_DECIMALS, caption_sentences, cell_grid, render_csv, with_aggregates
from .board import SEVERE_PAPER, Board, Entry, factor_scores, load_board
from .site_assets import CSS, JS

SITE_SCHEMA = "severe-bench/leaderboard-site/v1"
FAMILIES = ("R(2+1)D-18", "ViT")
esc = html.escape
SUPERSEDED = ' <span class="badge superseded" title="not the current official protocol">superseded</span>'


def _num(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) or pd.isna(v) else repr(float(v))


def _clean(v):
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):
        return _clean(v.item())
    return v


def _page(title: str, body: str, depth: int = 0) -> str:
    up = "../" * depth
    return (f'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(title)}</title>\n'
            f'<link rel="stylesheet" href="{up}assets/board.css">\n<script src="{up}assets/board.js" defer></script>\n'
            f'</head>\n<body>\n{body}\n<footer class="wrap">Generated {esc(utc_now())} by severe-bench {esc(code_version())}. '
            f'Numbers of submitted entries are recomputed by the board from their per-video predictions; published '
            f'numbers are as the papers report them. <a href="{up}board.json">board.json</a> · '
            f'<a href="{up}board.csv">board.csv</a></footer>\n</body>\n</html>\n')


def _compact_header(up: str = "../") -> str:
    return (f'<header class="site compact"><div class="wrap"><h1><a href="{up}index.html" style="color:inherit">SEVERE '
            'Benchmark</a> <small>Leaderboard</small></h1></div></header>')


def _header(subtitle: str = "") -> str:
    return (f'<header class="site"><div class="wrap"><h1>SEVERE Benchmark <small>{esc(subtitle)}</small></h1>'
            '<p class="lede">How well does a video representation generalise beyond the standard action-recognition '
            'benchmarks? Eight downstream settings that vary the <b>domain</b>, the number of training <b>samples</b>, '
            'the <b>action</b> granularity and the <b>task</b>, each fine-tuned with one fixed protocol.</p>'
            f'<div class="cite">Benchmark: <b>{esc(SEVERE_PAPER["citation"])}</b> '
            f'<a href="{esc(SEVERE_PAPER["url"])}">[paper]</a></div></div></header>')


# --- the table --------------------------------------------------------------------------------------------

def _entry_of(table: SevereTable, board: Board) -> dict:
    """table row label -> Entry."""
    by_key = {(e.name, "published" if e.kind == "published" else "user"): e for e in board.entries}
    return {label: by_key.get((table.rows.at[label, "method"], table.rows.at[label, "provenance"])) for label in table.labels}


def _cell_html(cell, key: str, value, views: str, extra_cls: str = "") -> str:
    if not cell.value:
        inner = '<span class="std">–</span>'
    else:
        emph = f' class="{cell.emphasis}"' if cell.emphasis else ""
        inner = f"<span{emph}>{esc(cell.value)}</span>"
        if cell.std:
            inner += f'<span class="std">±{esc(cell.std)}</span>'
        if cell.smoke:
            inner += "‡"
    return f'<td class="num{extra_cls}" data-key="{key}" data-v="{_num(value)}" data-views="{views}">{inner}</td>'


def _views_of(group: str) -> str:
    return f"all {group}" if group in dict(SEVERE_GROUPS) else "all"


def table_html(table: SevereTable, board: Board, table_id: str) -> str:
    """The board table with sort keys per cell, view membership per column and backbone family per row."""
    entries = _entry_of(table, board)
    grid = cell_grid(table)
    aggregates = with_aggregates(table)
    factors = factor_scores(table) if aggregates else {}
    cols = table.columns
    head1 = ['<th rowspan="2" class="method sortable" data-key="method" data-best="asc">Method<span class="arrow"></span></th>',
             '<th rowspan="2" class="method sortable" data-key="backbone" data-best="asc">Backbone<span class="arrow"></span></th>']
    i = 0
    while i < len(cols):
        group = cols[i].group
        span = 1
        while i + span < len(cols) and cols[i + span].group == group:
            span += 1
        head1.append(f'<th colspan="{span}" class="grp" data-views="{_views_of(group)}">{esc(group)}</th>')
        i += span
    head2 = []
    for c in cols:
        best = "desc" if c.higher_is_better else "asc"
        arrow = " ↓" if not c.higher_is_better else ""
        head2.append(f'<th class="sortable num" data-key="{c.task}" data-best="{best}" data-views="{_views_of(c.group)}" '
                     f'title="{esc(c.task)}: {esc(c.metric)}{" (lower is better)" if arrow else ""}">'
                     f'{esc(c.title)}{arrow}<span class="arrow"></span></th>')
    if aggregates:
        head1.append('<th colspan="2" class="grp agg first" data-views="all">SEVERE</th>')
        head2.append('<th class="sortable num agg first" data-key="mean" data-best="desc" data-views="all" '
                     'title="mean of the eight tasks, UCF-RC as (1 − error) × 100">Mean<span class="arrow"></span></th>')
        head2.append('<th class="sortable num agg" data-key="rank" data-best="asc" data-views="all" aria-sort="ascending" '
                     'title="average rank over the eight tasks">Rank ↓<span class="arrow"></span></th>')
        for group in factors:
            head1.append(f'<th colspan="2" class="grp agg first" data-views="{group}">{esc(group)} factor</th>')
            head2.append(f'<th class="sortable num agg first" data-key="f-{group}-mean" data-best="desc" data-views="{group}">'
                         f'Mean<span class="arrow"></span></th>')
            head2.append(f'<th class="sortable num agg" data-key="f-{group}-rank" data-best="asc" data-views="{group}">'
                         f'Rank ↓<span class="arrow"></span></th>')
    rows = []
    for label in table.labels:
        e = entries[label]
        cells = grid[label]
        family = e.family if e else "unknown"
        badge = ('<span class="badge published" title="as reported in the paper; not reproduced by this board">published</span>'
                 if table.rows.at[label, "provenance"] == "published" else
                 '<span class="badge verified" title="every metric recomputed from the submitted per-video predictions">verified</span>')
        name = esc(label)
        if e is not None:
            name = f'<a href="entries/{e.slug}.html">{name}</a>'
            if e.paper:
                name += f'<a class="paper" href="{esc(e.paper)}" title="{esc(e.citation or e.paper)}">paper↗</a>'
        tds = [f'<td class="method" data-key="method" data-v="{esc(label)}">{name}{badge}</td>',
               f'<td class="backbone" data-key="backbone" data-v="{esc(e.backbone if e else "")}">{esc(e.backbone if e else "")}</td>']
        for c, cell in zip(cols, cells):
            tds.append(_cell_html(cell, c.task, table.mean.at[label, c.task], _views_of(c.group)))
        if aggregates:
            tds.append(_cell_html(cells[len(cols)], "mean", table.severe_mean[label], "all", " agg first"))
            tds.append(_cell_html(cells[len(cols) + 1], "rank", table.avg_rank[label], "all", " agg"))
            for group, (fmean, frank) in factors.items():
                fm, fr = fmean[label], frank[label]
                for key, v, dec, cls in ((f"f-{group}-mean", fm, MEAN_DECIMALS, " agg first"), (f"f-{group}-rank", fr, RANK_DECIMALS, " agg")):
                    text = "" if pd.isna(v) else f"{v:.{dec}f}"
                    tds.append(f'<td class="num{cls}" data-key="{key}" data-v="{_num(v)}" data-views="{group}">'
                               f'{esc(text) or "<span class=std>–</span>"}</td>')
        kind = "published" if table.rows.at[label, "provenance"] == "published" else "submitted"
        rows.append(f'<tr class="{kind}" data-family="{esc(family)}" data-entry="{esc(e.slug if e else "")}">'
                    + "".join(tds) + "</tr>")
    narrow = " narrow" if len(cols) < 4 else ""
    return (f'<div class="tablebox{narrow}"><table class="board{narrow}" id="{table_id}">\n<thead>\n<tr class="groups">{"".join(head1)}</tr>\n'
            f'<tr>{"".join(head2)}</tr>\n</thead>\n<tbody>\n' + "\n".join(rows) + "\n</tbody>\n</table></div>")


def _controls(factor_groups: list[str]) -> str:
    views = "".join(f'<button type="button" data-view="{g}" aria-pressed="false">{esc(g)}</button>' for g in factor_groups)
    fams = "".join(f'<button type="button" data-backbone="{esc(f)}" aria-pressed="false">{esc(f)}</button>' for f in FAMILIES)
    return ('<div class="controls">'
            f'<div><span class="label">Factor</span><span class="seg"><button type="button" data-view="all" aria-pressed="true">All</button>{views}</span></div>'
            f'<div><span class="label">Backbone</span><span class="seg"><button type="button" data-backbone="all" aria-pressed="true">All</button>{fams}</span></div>'
            '<div class="downloads">Download <a href="board.csv">CSV</a><a href="board.json">JSON</a></div></div>')


def _protocols_html(board: Board) -> str:
    rows = "".join(
        f"<tr><td>{esc(titles(t)[0])}</td><td class='mono'>{esc(t)}</td><td>{esc(p['dataset'] or '')}</td>"
        f"<td>{esc(p['name'])}</td><td>{esc(p['metric'])}</td><td class='mono'>{esc(p['hash'])}</td></tr>"
        for t, p in board.official.items())
    return ("<h2>Official protocols</h2><p class='note'>A submitted result enters the board only under the official "
            "protocol hash of its task: the hash of every value that decides the numbers (data files and filter, "
            "training schedule, augmentation, test views, metric). R(2+1)D-18 track shown; ViT entries carry the "
            "ViT-track hashes on their pages.</p><table class='plain'><thead><tr><th>Column</th><th>Task</th>"
            f"<th>Dataset</th><th>Protocol</th><th>Metric</th><th>Hash</th></tr></thead><tbody>{rows}</tbody></table>")


def index_html(board: Board) -> str:
    main = board.main
    groups = [g for g, _ in SEVERE_GROUPS if g in factor_scores(main)] if with_aggregates(main) else []
    n_pub = sum(e.kind == "published" for e in board.entries)
    n_main = sum(e.kind == "submitted" and e.status == "main" for e in board.entries)
    n_part = sum(e.kind == "submitted" and e.status == "partial" for e in board.entries)
    counts = (f'<p class="counts"><b>{n_pub}</b> published methods (reference) · <b>{n_main + n_part}</b> verified '
              f'submissions ({n_main} on the main board, {n_part} partial) · updated {esc(utc_now()[:10])}</p>')
    body = [_header("Leaderboard"), '<main class="wrap">', counts, _controls(groups), table_html(main, board, "board"),
            f'<p class="note">{esc(" ".join(caption_sentences(main)))} '
            '<span class="badge published">published</span> numbers as reported in the papers (not reproduced); '
            '<span class="badge verified">verified</span> submissions, every metric recomputed from their per-video '
            'predictions. Click a column to sort; factor views show that factor\'s tasks with their mean and rank.</p>']
    if board.partial is not None:
        body += ['<h2>Partial entries <span class="badge partial">fewer than eight tasks</span></h2>',
                 '<p class="note">Verified submissions that do not (yet) cover all eight SEVERE tasks under the official '
                 'protocols; they have no SEVERE mean or rank. <a href="partial.csv">CSV</a></p>',
                 table_html(board.partial, board, "partial")]
    body += [_protocols_html(board),
             "<h2>Submitting</h2><pre>severe eval --checkpoint CKPT --suite severe --seed 0 --seed 1 --seed 2 --out runs/mine\n"
             "severe submit runs/mine --name 'My method' --paper https://arxiv.org/abs/... --out mine.zip</pre>"
             "<p class='note'>The board checks each bundle before storing it: result schema, protocol hashes recomputed "
             "and equal to the official ones, no smoke-profile results, every metric recomputed from the predictions "
             "(and the labels against the board's annotation files), no duplicate checkpoint, a safe archive.</p>",
             "</main>"]
    return _page("SEVERE Benchmark Leaderboard", "\n".join(body))


# --- entry pages ------------------------------------------------------------------------------------------

def _facts(pairs) -> str:
    return "<table class='facts'>" + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in pairs if v) + "</table>"


def _fmt(v, unit: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.3f}" if unit != "%" else f"{v:.1f}"


def entry_record(entry: Entry, board: Board) -> dict:
    """The entry's JSON: identity, cells and, for submissions, the provenance of every stored result."""
    obs = board.observations
    prov = "published" if entry.kind == "published" else "user"
    mine = obs[(obs["method"] == entry.name) & (obs["provenance"] == prov)]
    cells = {}
    own_hash = {r["task"]: r["protocol_hash"] for r in entry.results if r.get("current")}
    for task, rows in mine.groupby("task", sort=False):
        values = rows["value"].astype(float).tolist()
        if prov == "published":
            cells[task] = {"mean": values[0], "std": _clean(rows["std"].iloc[0]), "n": None, "unit": rows["unit"].iloc[0]}
        else:
            s = pd.Series(values)
            cells[task] = {"mean": float(s.mean()), "std": _clean(float(s.std(ddof=1))) if len(s) > 1 else None,
                           "n": len(s), "unit": rows["unit"].iloc[0], "seeds": [int(x) for x in rows["seed"]], "values": values,
                           "protocol_hash": own_hash.get(task)}
    rec = {"slug": entry.slug, "name": entry.name, "kind": entry.kind, "status": entry.status, "backbone": entry.backbone,
           "family": entry.family, "paper": entry.paper, "citation": entry.citation, "pretraining": entry.pretraining,
           "source": entry.source, "page": f"entries/{entry.slug}.html", "cells": cells}
    for table in (board.main, board.partial):
        if table is None:
            continue
        for label in table.labels:
            if table.rows.at[label, "method"] == entry.name and table.rows.at[label, "provenance"] == prov:
                rec["severe_mean"] = _clean(table.severe_mean[label])
                rec["avg_rank"] = _clean(table.avg_rank[label])
    if entry.kind == "submitted":
        rec.update({"entry_id": entry.entry_id, "added_at": entry.added_at, "checkpoint": entry.checkpoint,
                    "submitted_at": entry.manifest.get("created_at"), "environment": entry.manifest.get("environment"),
                    "results": [{
                        "task": r["task"], "seed": r["seed"], "metric": r["metric"], "value": r["value"],
                        "protocol": {"name": r["protocol_name"], "hash": r["protocol_hash"], "track": r["track"],
                                     "official": r["current"]},
                        "code_version": r["code_version"], "created_at": r["created_at"],
                        "labels_checked": bool(r["labels_checked"]),
                        "num_test_scored": (r["doc"].get("data") or {}).get("num_test_scored"),
                        "unreadable_videos": ((r["doc"].get("data") or {}).get("unreadable_videos") or {}).get("count"),
                        "device": r["doc"].get("device"), "wall_time_s": r["doc"].get("wall_time_s"),
                        "protocol_values": {"values": r["doc"]["protocol"].get("values"),
                                            "checkpoint_overrides": r["doc"]["protocol"].get("checkpoint_overrides"),
                                            "normalisation": r["doc"]["protocol"].get("normalisation")},
                    } for r in entry.results]})
    return rec


def entry_html(entry: Entry, rec: dict) -> str:
    crumbs = '<div class="crumbs"><a href="../index.html">← SEVERE leaderboard</a></div>'
    if entry.kind == "published":
        badge = ('<span class="badge published">published</span> <span class="note">numbers as reported in the paper; '
                 'not reproduced by this board</span>')
        facts = _facts([("Backbone", esc(entry.backbone)), ("Pre-training", esc(entry.pretraining or "")),
                        ("Citation", esc(entry.citation or "")),
                        ("Paper", f'<a href="{esc(entry.paper)}">{esc(entry.paper)}</a>' if entry.paper else ""),
                        ("Numbers from", esc(entry.source or "")),
                        ("SEVERE mean / rank on this board", esc(f"{rec['severe_mean']:.1f} / {rec['avg_rank']:.2f}")
                         if rec.get("severe_mean") is not None and rec.get("avg_rank") is not None else "")])
        cells = "".join(f"<tr><td>{esc(titles(t)[0])}</td><td class='mono'>{esc(t)}</td><td>{_fmt(c['mean'], c['unit'])}"
                        f"{' ± ' + str(c['std']) if c['std'] is not None else ''}</td></tr>" for t, c in rec["cells"].items())
        detail = f"<h3>Published values</h3><table class='plain'><thead><tr><th>Column</th><th>Task</th><th>Value ± std (3 seeds)</th></tr></thead><tbody>{cells}</tbody></table>"
    else:
        status = ('<span class="badge verified">verified</span>' +
                  ('' if entry.status == "main" else ' <span class="badge partial">partial entry</span>'))
        badge = status + ' <span class="note">every metric recomputed by the board from the submitted per-video predictions</span>'
        ck = entry.checkpoint
        env = rec.get("environment") or {}
        pk = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())
        facts = _facts([("Backbone", esc(entry.backbone)), ("Architecture", f"<span class='mono'>{esc(ck.get('architecture') or '')}</span>"),
                        ("Checkpoint", esc(ck.get("name") or "")),
                        ("Checkpoint sha256", f"<span class='mono'>{esc(ck.get('sha256') or 'none (trained from scratch)')}</span>"),
                        ("Paper", f'<a href="{esc(entry.paper)}">{esc(entry.paper)}</a>' if entry.paper else ""),
                        ("Submitted", esc(rec.get("submitted_at") or "")), ("Added to the board", esc(entry.added_at or "")),
                        ("Environment", esc(f"Python {env.get('python', '?')} on {env.get('platform', '?')}; {pk}")),
                        ("SEVERE mean / rank", esc(f"{rec['severe_mean']:.1f} / {rec['avg_rank']:.2f}")
                         if rec.get("severe_mean") is not None and rec.get("avg_rank") is not None else "")])
        summary = "".join(
            f"<tr><td>{esc(titles(t)[0])}</td><td class='mono'>{esc(t)}</td><td>{_fmt(c['mean'], c['unit'])}"
            f"{' ± ' + format(c['std'], '.1f' if c['unit'] == '%' else '.3f') if c['std'] is not None else ''}</td><td>{c['n']}</td>"
            f"<td>{esc(', '.join(map(str, c['seeds'])))}</td><td class='mono'>{esc(c['protocol_hash'])}</td></tr>"
            for t, c in rec["cells"].items())
        runs = "".join(
            f"<tr><td class='mono'>{esc(r['task'])}</td><td>{r['seed']}</td><td>{esc(r['metric'])}</td>"
            f"<td>{r['value']:.4g}</td><td class='mono'>{esc(r['protocol']['name'])} {esc(r['protocol']['hash'])}"
            f"{'' if r['protocol']['official'] else SUPERSEDED}</td>"
            f"<td>{esc(r['protocol']['track'] or '')}</td><td>{r['num_test_scored']} / {r['unreadable_videos']}</td>"
            f"<td>{'yes' if r['labels_checked'] else 'no (board has no copy)'}</td>"
            f"<td class='mono'>{esc(r['code_version'] or '')}</td><td>{esc(r['created_at'] or '')}</td></tr>"
            for r in rec["results"])
        values = "".join(
            f"<details><summary>{esc(r['task'])} seed {r['seed']}: protocol values (hash {esc(r['protocol']['hash'])})"
            f"</summary><pre>{esc(json.dumps(r['protocol_values'], indent=1, sort_keys=True))}</pre></details>"
            for r in rec["results"])
        detail = ("<h3>Per task (mean ± sample std over seeds)</h3><table class='plain'><thead><tr><th>Column</th><th>Task</th>"
                  "<th>Mean ± std</th><th>Seeds</th><th>Seed ids</th><th>Protocol hash</th></tr></thead>"
                  f"<tbody>{summary}</tbody></table>"
                  "<h3>Provenance of every result</h3><table class='plain'><thead><tr><th>Task</th><th>Seed</th><th>Metric</th>"
                  "<th>Value</th><th>Protocol</th><th>Track</th><th>Scored / unreadable test videos</th>"
                  "<th>Labels checked</th><th>Code version</th><th>Created</th></tr></thead>"
                  f"<tbody>{runs}</tbody></table><h3>Recorded protocol values</h3>{values}")
    body = (f'{_compact_header()}<main class="wrap">{crumbs}<h2>{esc(entry.name)}</h2><p>{badge}</p>{facts}{detail}'
            f'<p class="note"><a href="{esc(entry.slug)}.json">This entry as JSON</a></p></main>')
    return _page(f"{entry.name} · SEVERE leaderboard", body, depth=1)


# --- the site ---------------------------------------------------------------------------------------------

def build_site(db: Path, out: Path) -> dict:
    """Write the site for the board in ``db`` into ``out``; returns a summary (entries, pages)."""
    board = load_board(db)
    out = Path(out)
    (out / "assets").mkdir(parents=True, exist_ok=True)
    (out / "entries").mkdir(exist_ok=True)
    (out / "assets" / "board.css").write_text(CSS, encoding="utf-8")
    (out / "assets" / "board.js").write_text(JS, encoding="utf-8")
    records = []
    for entry in board.entries:
        rec = entry_record(entry, board)
        records.append(rec)
        (out / "entries" / f"{entry.slug}.json").write_text(json.dumps(rec, indent=1, default=str), encoding="utf-8")
        (out / "entries" / f"{entry.slug}.html").write_text(entry_html(entry, rec), encoding="utf-8")
    columns = [{"task": c.task, "title": c.title, "group": c.group, "metric": c.metric,
                "higher_is_better": c.higher_is_better, "unit": c.unit, "in_severe": c.in_severe} for c in board.main.columns]
    doc = {"schema": SITE_SCHEMA, "generated_at": utc_now(), "generator": f"severe-bench {__version__} ({code_version()})",
           "benchmark": SEVERE_PAPER, "columns": columns, "official_protocols": board.official,
           "tie_rule": board.main.tie_rule, "entries": records}
    (out / "board.json").write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    (out / "board.csv").write_text(render_csv(board.main), encoding="utf-8")
    if board.partial is not None:
        (out / "partial.csv").write_text(render_csv(board.partial), encoding="utf-8")
    (out / "index.html").write_text(index_html(board), encoding="utf-8")
    return {"entries": len(board.entries), "submitted": sum(e.kind == "submitted" for e in board.entries),
            "index": out / "index.html"}
