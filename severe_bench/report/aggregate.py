"""From observations (user results and published rows) to the numbers of a SEVERE table.

* one cell per (method, task): mean ± sample std (ddof = 1) over seeds for user results; published rows keep
  their published value and std;
* SEVERE mean: arithmetic mean of the eight SEVERE tasks, UCF-RC entered as (1 − error) × 100, over the
  unrounded cell means; only for rows that have all eight;
* average rank: per SEVERE task, each row's rank among the rows of this table that have that task (1 = best,
  lower error is better on UCF-RC), computed on the values as displayed (rounded), so a reader can check it;
  averaged over the eight tasks for rows that have all eight. Ties: ``min`` (default) gives tied rows the best
  rank they share (1, 2, 2, 4); ``average`` gives them the mean of the ranks they span (1, 2.5, 2.5, 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import SevereError
from .layout import (PUBLISHED_METRICS, SEVERE_TASKS, Column, column_order, group_of, mean_contribution,
                     titles)
from .results import check_consistency

TIE_RULES = {
    "min": "ties share the best (minimum) rank",
    "average": "ties get the average of the ranks they span",
}


@dataclass
class SevereTable:
    columns: list[Column]
    rows: pd.DataFrame  # index: row label; method, provenance, source, comparable
    mean: pd.DataFrame  # rows × tasks
    std: pd.DataFrame
    n: pd.DataFrame  # seeds per cell (NaN for published cells)
    severe_mean: pd.Series
    avg_rank: pd.Series
    task_ranks: pd.DataFrame  # rows × SEVERE tasks present
    tie_rule: str
    protocols: dict = field(default_factory=dict)  # task -> dict(hash, name, profile, comparable) of user cells
    incomplete: set = field(default_factory=set)  # (row label, task) of cells computed on an incomplete dataset
    # (row label, task) -> (unreadable, truncated) test videos of the cell's results (most over its seeds)
    video_problems: dict = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return list(self.rows.index)

    def displayed(self, task: str) -> pd.Series:
        """Cell means rounded as printed."""
        col = next(c for c in self.columns if c.task == task)
        return self.mean[task].round(col.decimals)

    def smoke_tasks(self) -> list[str]:
        return [t for t, p in self.protocols.items() if not p["comparable"]]

    def has_all_severe(self) -> bool:
        return all(t in self.mean.columns for t in SEVERE_TASKS)


def _column_for(task: str, obs: pd.DataFrame) -> Column:
    user = obs[obs["provenance"] == "user"]
    first = user.iloc[0] if len(user) else obs.iloc[0]
    metric, higher, unit = first["metric"], bool(first["higher_is_better"]), first["unit"]
    if task in PUBLISHED_METRICS and (obs["provenance"] == "published").any() and len(user):
        p_metric, p_higher, _ = PUBLISHED_METRICS[task]
        if (metric, higher) != (p_metric, p_higher):
            raise SevereError(
                f"task {task!r}: the results report {metric!r} but the published column is {p_metric!r}; "
                f"they cannot share a column ({', '.join(sorted(user['source']))})"
            )
    name = next((n for n in obs["task_name"] if isinstance(n, str) and n), None)
    plain, latex = titles(task, name)
    return Column(task=task, group=group_of(task), title=plain, latex_title=latex, higher_is_better=higher,
                  metric=metric, unit=unit, in_severe=task in SEVERE_TASKS)


def _row_labels(keys: list[tuple[str, str]]) -> list[str]:
    """Row label = method name; a published row whose name a user row also uses gets " (published)"."""
    user_names = {m for m, p in keys if p == "user"}
    return [f"{m} (published)" if p == "published" and m in user_names else m for m, p in keys]


def build_table(observations: pd.DataFrame, tie_rule: str = "min", sort: str = "none",
                tasks: list[str] | None = None) -> SevereTable:
    """Aggregate an observation frame (``load_results`` and/or ``load_reference``) into a SevereTable."""
    if tie_rule not in TIE_RULES:
        raise SevereError(f"unknown tie rule {tie_rule!r}; choose one of {', '.join(TIE_RULES)}")
    if observations.empty:
        raise SevereError("no results to tabulate: pass result JSONs/directories, or --with-reference")
    check_consistency(observations)
    obs = observations if tasks is None else observations[observations["task"].isin(tasks)]
    if obs.empty:
        raise SevereError(f"none of the results is for the requested tasks {tasks}")

    order = column_order(set(obs["task"]))
    columns = [_column_for(t, obs[obs["task"] == t]) for t in order]

    # row keys in order of first appearance: published rows (reference order), then user rows
    keys: list[tuple[str, str]] = []
    for prov in ("published", "user"):
        for m in obs.loc[obs["provenance"] == prov, "method"]:
            if (m, prov) not in keys:
                keys.append((m, prov))
    labels = _row_labels(keys)
    label_of = dict(zip(keys, labels))

    mean = pd.DataFrame(np.nan, index=labels, columns=order)
    std = mean.copy()
    n = mean.copy()
    protocols: dict = {}
    incomplete: set = set()
    video_problems: dict = {}
    for (method, prov, task), cell in obs.groupby(["method", "provenance", "task"], sort=False):
        label = label_of[(method, prov)]
        if prov == "published":
            mean.loc[label, task] = cell["value"].iloc[0]
            std.loc[label, task] = cell["std"].iloc[0]
        else:
            values = cell["value"].to_numpy(dtype=float)
            mean.loc[label, task] = values.mean()
            std.loc[label, task] = values.std(ddof=1) if len(values) > 1 else np.nan
            n.loc[label, task] = len(values)
            if (cell["complete_data"] == False).any():  # noqa: E712 (NaN for rows without the field)
                incomplete.add((label, task))
            bad = tuple(int(pd.to_numeric(cell[c], errors="coerce").fillna(0).max())
                        for c in ("unreadable_videos", "truncated_videos"))
            if any(bad):
                video_problems[(label, task)] = bad
            first = cell.iloc[0]
            protocols[task] = {"hash": first["protocol_hash"], "name": first["protocol_name"],
                               "profile": first["profile"], "comparable": bool(cell["comparable"].all())}

    protocols = {t: protocols[t] for t in order if t in protocols}
    rows = pd.DataFrame(
        {"method": [k[0] for k in keys], "provenance": [k[1] for k in keys]}, index=labels)
    rows["source"] = [
        "; ".join(sorted(set(obs.loc[(obs["method"] == m) & (obs["provenance"] == p), "source"].astype(str))))
        for m, p in keys]
    rows["comparable"] = [
        bool(obs.loc[(obs["method"] == m) & (obs["provenance"] == p), "comparable"].all()) for m, p in keys]

    severe_cols = [c for c in columns if c.in_severe]
    task_ranks = pd.DataFrame(index=labels, columns=[c.task for c in severe_cols], dtype=float)
    for col in severe_cols:
        shown = mean[col.task].round(col.decimals)
        task_ranks[col.task] = shown.rank(ascending=not col.higher_is_better, method=tie_rule)
    complete = len(severe_cols) == len(SEVERE_TASKS)
    if complete:
        full = mean[SEVERE_TASKS].notna().all(axis=1)
        contrib = pd.DataFrame({c.task: mean[c.task].map(lambda v, c=c: mean_contribution(v, c) if pd.notna(v) else np.nan)
                                for c in severe_cols})
        severe_mean = contrib.mean(axis=1).where(full)
        avg_rank = task_ranks.mean(axis=1).where(full)
    else:
        severe_mean = pd.Series(np.nan, index=labels)
        avg_rank = pd.Series(np.nan, index=labels)

    table = SevereTable(columns=columns, rows=rows, mean=mean, std=std, n=n, severe_mean=severe_mean,
                        avg_rank=avg_rank, task_ranks=task_ranks, tie_rule=tie_rule, protocols=protocols,
                        incomplete=incomplete, video_problems=video_problems)
    return sort_table(table, sort)


def sort_table(table: SevereTable, sort: str) -> SevereTable:
    if sort == "none":
        return table
    if sort == "mean":
        order = table.severe_mean.sort_values(ascending=False, na_position="last", kind="stable").index
    elif sort == "rank":
        order = table.avg_rank.sort_values(ascending=True, na_position="last", kind="stable").index
    else:
        raise SevereError(f"unknown sort {sort!r}; choose none, mean or rank")
    return SevereTable(columns=table.columns, rows=table.rows.loc[order], mean=table.mean.loc[order],
                       std=table.std.loc[order], n=table.n.loc[order], severe_mean=table.severe_mean.loc[order],
                       avg_rank=table.avg_rank.loc[order], task_ranks=table.task_ranks.loc[order],
                       tie_rule=table.tie_rule, protocols=table.protocols, incomplete=table.incomplete,
                       video_problems=table.video_problems)
