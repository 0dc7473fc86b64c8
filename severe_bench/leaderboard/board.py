"""The board as data: published reference entries plus the accepted submissions, and their SEVERE tables.

Published entries come from the reference tables shipped with severe-bench (``leaderboard/reference``), with the
citation and paper link of ``methods.csv``; they are marked *published* (numbers as the papers report them, not
reproduced here). Submitted entries are the store's; only results under the task's current official protocol
hash enter a table (a result of an older protocol version stays on its entry page, marked superseded). An entry
with all eight SEVERE tasks is on the main board; others are partial entries, tabulated separately.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from .. import registry
from ..errors import SevereError
from ..report.aggregate import SevereTable, build_table
from ..report.layout import SEVERE_GROUPS, SEVERE_TASKS, mean_contribution
from ..report.reference import SEVERE_REFERENCE_FILES, load_reference, read_reference_csv
from ..report.results import OBSERVATION_COLUMNS, parse_result
from .store import read_board

METHODS_FILE = "methods.csv"
SEVERE_PAPER = {"citation": "F. Thoker, H. Doughty, P. Bagad, C. G. M. Snoek. How Severe is Benchmark-Sensitivity "
                            "in Video Self-Supervised Learning? ECCV 2022.",
                "url": "https://arxiv.org/abs/2203.14221"}


def backbone_family(backbone: str | None) -> str:
    """The board's backbone filter groups: every ViT size is "ViT"; other backbones keep their name."""
    b = (backbone or "").strip()
    return "ViT" if b.lower().startswith("vit") else (b or "unknown")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "entry"


@dataclass
class Entry:
    slug: str
    name: str
    kind: str  # "published" or "submitted"
    status: str  # "main", "partial" (submitted) or "published"
    backbone: str
    paper: str | None = None
    citation: str | None = None
    pretraining: str | None = None
    source: str | None = None  # published: the reference table and its comment
    entry_id: int | None = None
    checkpoint: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    added_at: str | None = None
    results: list[dict] = field(default_factory=list)  # stored rows (submitted) with "current" flags

    @property
    def family(self) -> str:
        return backbone_family(self.backbone)


@dataclass
class Board:
    entries: list[Entry]
    main: SevereTable
    partial: SevereTable | None
    official: dict  # task -> {"hash", "name", "metric", "dataset", "track"} of the current registry (CNN track)
    observations: pd.DataFrame  # every tabulated observation (published + current submitted)


def published_methods() -> dict[str, dict]:
    """method -> {backbone, pretraining, citation, url} from ``methods.csv``."""
    frame, _ = read_reference_csv(METHODS_FILE)
    return {str(r["method"]): {k: (None if pd.isna(r[k]) else str(r[k])) for k in ("backbone", "pretraining", "citation", "url")}
            for _, r in frame.iterrows()}


def official_protocols(tasks) -> dict:
    out = {}
    for t in tasks:
        try:
            task = registry.get_task(t, profile="full")
        except SevereError:
            continue
        out[t] = {"hash": task.protocol_hash, "name": task.protocol["name"], "metric": task.metric["name"],
                  "dataset": task.dataset.get("name"), "title": task.name}
    return out


def _official_hash(task: str, track: str | None, cache: dict) -> str | None:
    if (task, track) not in cache:
        try:
            cache[task, track] = registry.get_task(task, profile="full", track=track).protocol_hash
        except SevereError:
            cache[task, track] = None
    return cache[task, track]


def _published_entries(reference: pd.DataFrame) -> list[Entry]:
    methods = published_methods()
    out = []
    for method in dict.fromkeys(reference["method"]):
        rows = reference[reference["method"] == method]
        facts = methods.get(method, {})
        backbone = facts.get("backbone") or next((a for a in rows["architecture"] if isinstance(a, str) and a), None)
        out.append(Entry(slug=f"published-{slug(method)}", name=method, kind="published", status="published",
                         backbone=backbone or "R(2+1)D-18", paper=facts.get("url"), citation=facts.get("citation"),
                         pretraining=facts.get("pretraining"),
                         source="; ".join(sorted(set(rows["source"].astype(str))))))
    return out


def _submitted(db) -> tuple[list[Entry], list[dict]]:
    stored, results = read_board(db)
    cache: dict = {}
    entries, observations = [], []
    for e in stored:
        mine = [r for r in results if r["entry_id"] == e["id"]]
        for r in mine:
            r["current"] = r["protocol_hash"] == _official_hash(r["task"], r["track"], cache)
            if r["current"]:
                row = parse_result(r["doc"], f"leaderboard entry #{e['id']}")
                row["method"] = e["name"]
                observations.append(row)
        current_tasks = {r["task"] for r in mine if r["current"]}
        entries.append(Entry(
            slug=f"entry-{e['id']}-{slug(e['name'])}", name=e["name"], kind="submitted",
            status="main" if set(SEVERE_TASKS) <= current_tasks else "partial", backbone=e["backbone"],
            paper=e["paper"], entry_id=e["id"], added_at=e["added_at"], manifest=e["manifest"],
            checkpoint=dict(e["manifest"].get("checkpoint") or {}), results=mine))
    return entries, observations


def load_board(db) -> Board:
    reference = load_reference(SEVERE_REFERENCE_FILES)
    published = _published_entries(reference)
    submitted, rows = _submitted(db)
    user = pd.DataFrame(rows, columns=OBSERVATION_COLUMNS)
    # Every tabulated result is at its track's official hash; a column may hold both tracks (as the paper's
    # table does), so the column's protocol is named by all the official hashes it holds.
    for task, idx in user.groupby("task").groups.items():
        user.loc[idx, "protocol_hash"] = "+".join(sorted(set(user.loc[idx, "protocol_hash"])))
    main_names = {e.name for e in submitted if e.status == "main"}
    main_obs = pd.concat([reference, user[user["method"].isin(main_names)]], ignore_index=True)
    partial_obs = user[~user["method"].isin(main_names)]
    main = build_table(main_obs, sort="rank")
    partial = build_table(partial_obs.reset_index(drop=True)) if len(partial_obs) else None
    return Board(entries=published + submitted, main=main, partial=partial,
                 official=official_protocols(SEVERE_TASKS + ["ucf101"]),
                 observations=pd.concat([reference, user], ignore_index=True))


def factor_scores(table: SevereTable) -> dict[str, tuple[pd.Series, pd.Series]]:
    """Per factor group: (mean, average rank) over its two tasks, for rows that have both, as in the paper's
    per-factor discussion (UCF-RC entered as (1 − error) × 100)."""
    out = {}
    cols = {c.task: c for c in table.columns}
    for group, tasks in SEVERE_GROUPS:
        if not all(t in cols for t in tasks):
            continue
        contrib = pd.DataFrame({t: table.mean[t].map(lambda v, c=cols[t]: mean_contribution(v, c) if pd.notna(v) else float("nan"))
                                for t in tasks})
        full = contrib.notna().all(axis=1)
        ranks = table.task_ranks[tasks]
        out[group] = (contrib.mean(axis=1).where(full), ranks.mean(axis=1).where(full))
    return out
