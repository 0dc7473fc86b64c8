"""Published numbers shipped with the project (``leaderboard/reference/*.csv``).

Each CSV starts with ``#`` comment lines saying where its numbers come from; they are kept as the rows'
provenance. Published rows have protocol ``published`` and are never merged with user results.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import SevereError
from ..resources import resource_path
from .layout import PUBLISHED_METRICS, SEVERE_TASKS
from .results import OBSERVATION_COLUMNS

# The SEVERE rows of thesis Table 5.8: Table 4.4 (with the std of Table B.3) plus the later methods.
SEVERE_REFERENCE_FILES = ("severe_benchmark.csv", "severe_later_methods.csv")


def reference_dir() -> Path:
    return resource_path("leaderboard/reference")


def read_reference_csv(name: str) -> tuple[pd.DataFrame, list[str]]:
    """(table, comment lines) of one bundled reference CSV. The method "None" stays a string."""
    path = reference_dir() / name
    if not path.exists():
        raise SevereError(f"bundled reference table {name!r} not found in {reference_dir()}")
    comments = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                break
            comments.append(line[1:].strip())
    frame = pd.read_csv(path, comment="#", keep_default_na=False, na_values=[""], dtype={"method": str})
    return frame, comments


def load_reference(files: tuple[str, ...] = SEVERE_REFERENCE_FILES, tasks: list[str] | None = None) -> pd.DataFrame:
    """Published rows as an observation frame (one row per method and task that has a number)."""
    wanted = set(tasks) if tasks is not None else set(SEVERE_TASKS) | {"ucf101"}
    rows = []
    for name in files:
        table, comments = read_reference_csv(name)
        source = f"leaderboard/reference/{name}"
        if comments:
            source += f" ({comments[0]})"
        for _, rec in table.iterrows():
            for task in [c for c in table.columns if c in PUBLISHED_METRICS and c in wanted]:
                value = rec[task]
                if pd.isna(value):
                    continue
                metric, higher, unit = PUBLISHED_METRICS[task]
                std = rec.get(f"{task}_std", float("nan"))
                rows.append({
                    "method": rec["method"], "provenance": "published", "source": source, "task": task,
                    "task_name": None, "factor": None, "dataset": None, "protocol_name": "published",
                    "protocol_hash": "published", "profile": "published", "comparable": True,
                    "metric": metric, "higher_is_better": higher, "unit": unit, "value": float(value),
                    "std": float(std) if not pd.isna(std) else float("nan"), "n_seeds": None, "seed": None,
                    "num_train": None, "architecture": rec.get("backbone"), "checkpoint": None,
                    "checkpoint_sha256": None, "code_version": None, "created_at": None,
                })
    return pd.DataFrame(rows, columns=OBSERVATION_COLUMNS)
