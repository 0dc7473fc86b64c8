"""Read the result JSONs written by ``severe eval`` into one pandas frame (one row per file).

Schema: ``severe-bench/result/v1`` (docs/CONVENTIONS.md). Every result is validated when read. Explicitly named
files must be valid results; files found by walking a directory are skipped when they are another tool's JSON
(no result schema and not named result.json: CKA/bias outputs may sit beside results), and are errors when
damaged (unparseable JSON, a result.json without the schema, failed validation).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd

from ..errors import MissingFileError, ResultError, SevereError
from ..results import RESULT_FILE, load_json, validate_result

RESULT_SCHEMA = "severe-bench/result/v1"

# columns of the observation frame shared by user results and published rows
OBSERVATION_COLUMNS = [
    "method", "provenance", "source", "task", "task_name", "factor", "dataset",
    "protocol_name", "protocol_hash", "profile", "comparable",
    "metric", "higher_is_better", "unit", "value", "std", "n_seeds", "seed",
    "num_train", "architecture", "checkpoint", "checkpoint_sha256", "code_version", "created_at",
    "complete_data",  # False: computed on an incomplete dataset (data.complete, PROTOCOL.md §2.2)
    "unreadable_videos", "truncated_videos",  # counts of test videos not scored / decoding short (data.*)
]


def _expand(paths: Iterable[str | Path]) -> list[tuple[Path, bool]]:
    """(file, named explicitly) for every argument; directories are walked for ``*.json``."""
    out: list[tuple[Path, bool]] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            out += [(f, False) for f in sorted(p.rglob("*.json"))]
        elif p.is_file():
            out.append((p, True))
        else:
            raise MissingFileError(f"result path {p} does not exist")
    return out


def _get(data: dict, dotted: str, path: Path, required: bool = True):
    cur = data
    for key in dotted.split("."):
        if not isinstance(cur, dict) or key not in cur:
            if required:
                raise SevereError(f"{path}: result JSON lacks {dotted!r} (schema {RESULT_SCHEMA})")
            return None
        cur = cur[key]
    return cur


def parse_result(data: dict, path: Path) -> dict:
    """One observation row from a parsed result JSON; raises SevereError naming the file and the field."""
    if data.get("schema") != RESULT_SCHEMA:
        raise SevereError(f"{path}: not a severe-bench result (schema {data.get('schema')!r}, expected {RESULT_SCHEMA!r})")
    value = _get(data, "metric.value", path)
    if value is None or not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise SevereError(f"{path}: metric.value must be a finite number, got {value!r}")
    model = _get(data, "model", path)
    checkpoint = (model.get("checkpoint") or {}) if isinstance(model, dict) else None
    if not isinstance(checkpoint, dict):
        raise SevereError(f"{path}: 'model' and 'model.checkpoint' must be JSON objects (schema {RESULT_SCHEMA})")
    label = model.get("label") or checkpoint.get("name")
    if not label:
        raise SevereError(f"{path}: result has neither model.label nor model.checkpoint.name")
    unit = _get(data, "metric.unit", path, required=False)
    metric_name = _get(data, "metric.name", path)
    if not unit:  # older or hand-written results: the metric name decides
        unit = "fraction" if metric_name == "counting_error" else "%"
    seed = _get(data, "seed", path)
    try:
        seed = int(seed) if seed is not None else None
    except (TypeError, ValueError):
        raise SevereError(f"{path}: seed must be an integer, got {seed!r}") from None
    return {
        "method": str(label),
        "provenance": "user",
        "source": str(path),
        "task": str(_get(data, "task.id", path)),
        "task_name": _get(data, "task.name", path, required=False),
        "factor": _get(data, "task.factor", path, required=False),
        "dataset": _get(data, "task.dataset", path, required=False),
        "protocol_name": _get(data, "protocol.name", path, required=False),
        "protocol_hash": str(_get(data, "protocol.hash", path)),
        "profile": _get(data, "protocol.profile", path, required=False),
        "comparable": bool(_get(data, "protocol.comparable", path)),
        "metric": str(metric_name),
        "higher_is_better": bool(_get(data, "metric.higher_is_better", path)),
        "unit": "%" if unit == "%" else "fraction",
        "value": float(value),
        "std": float("nan"),
        "n_seeds": 1,
        "seed": seed,
        "num_train": _get(data, "data.num_train", path, required=False),
        "architecture": model.get("architecture"),
        "checkpoint": checkpoint.get("name"),
        "checkpoint_sha256": checkpoint.get("sha256"),
        "code_version": data.get("code_version"),
        "created_at": data.get("created_at"),
        "complete_data": _get(data, "data.complete", path, required=False) is not False,
        "unreadable_videos": _get(data, "data.unreadable_videos.count", path, required=False) or 0,
        "truncated_videos": _get(data, "data.truncated_videos.count", path, required=False) or 0,
    }


def _classify(path: Path, explicit: bool) -> tuple[str, object]:
    """("row", data) for a valid result, ("skip", None) for another tool's JSON met while walking a folder,
    ("invalid", problems) for a damaged or inconsistent file."""
    try:
        data = load_json(path)
    except ResultError as exc:
        return "invalid", [str(exc).removeprefix(f"{path}: ")]
    schema = data.get("schema") if isinstance(data, dict) else None
    is_result = path.name == RESULT_FILE or (isinstance(schema, str) and schema.startswith("severe-bench/result/"))
    if not explicit and not is_result:
        return "skip", None  # CKA/bias outputs, run.json, predictions.json may sit beside results
    problems = validate_result(data)
    return ("invalid", problems) if problems else ("row", data)


def load_results(paths: Iterable[str | Path], skip_invalid: bool = False,
                 warn: Callable[[str], None] | None = None) -> pd.DataFrame:
    """All results under ``paths`` as an observation frame (columns ``OBSERVATION_COLUMNS``).

    Every result is validated (``severe_bench.results.validate_result``). A damaged or inconsistent file is an
    error naming it and its problems; with ``skip_invalid`` such files are left out and listed through ``warn``.
    """
    rows, invalid = [], []
    for path, explicit in _expand(paths):
        kind, payload = _classify(path, explicit)
        if kind == "row":
            rows.append(parse_result(payload, path))
        elif kind == "invalid":
            invalid.append((path, payload))
    if invalid:
        listing = "\n".join(f"  {p}: {'; '.join(problems)}" for p, problems in invalid)
        if not skip_invalid:
            raise ResultError(f"{len(invalid)} result file(s) are damaged or inconsistent:\n{listing}\n"
                              "Fix or remove them, or pass --skip-invalid to leave them out (they will be listed).")
        if warn is not None:
            warn(f"warning: left out {len(invalid)} invalid result file(s) (--skip-invalid):\n{listing}")
    frame = pd.DataFrame(rows, columns=OBSERVATION_COLUMNS)
    check_consistency(frame)
    return frame


def _files(frame: pd.DataFrame) -> str:
    return ", ".join(sorted(frame["source"].astype(str)))


def check_consistency(frame: pd.DataFrame) -> None:
    """Refuse results that cannot share a table: mixed protocols in a task column, duplicate seeds,
    one label naming two different checkpoints."""
    user = frame[frame["provenance"] == "user"]
    for task, rows in user.groupby("task", sort=True):
        hashes = rows["protocol_hash"].unique()
        if len(hashes) > 1:
            detail = "; ".join(f"protocol {h}: {_files(rows[rows['protocol_hash'] == h])}" for h in sorted(hashes))
            raise SevereError(
                f"task {task!r}: results under {len(hashes)} different protocol hashes cannot share a column "
                f"({detail}). Pass results of one protocol per task (e.g. make separate tables)."
            )
        metrics = rows["metric"].unique()
        if len(metrics) > 1:
            raise SevereError(f"task {task!r}: results report different metrics {sorted(metrics)}: {_files(rows)}")
    for (method, task, seed), rows in user.groupby(["method", "task", "seed"], dropna=False):
        if len(rows) > 1:
            raise SevereError(
                f"{method!r} on {task!r} has {len(rows)} results for seed {seed}: {_files(rows)}; "
                "keep one result per seed"
            )
    for method, rows in user.groupby("method"):
        shas = rows["checkpoint_sha256"].dropna().unique()
        if len(shas) > 1:
            raise SevereError(
                f"label {method!r} names {len(shas)} different checkpoints ({_files(rows)}); "
                "give each checkpoint its own label"
            )
