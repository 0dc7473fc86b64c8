"""The result JSON written by ``severe eval`` (schema ``severe-bench/result/v1``, see docs/CONVENTIONS.md)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

SCHEMA = "severe-bench/result/v1"
RESULT_FILE = "result.json"


def _clean(obj):
    """JSON has no NaN: write null instead, so every reader can parse the file."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return _clean(obj.item())
    return obj


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_clean(payload), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def result_path(out_dir: Path, task_id: str, seed: int) -> Path:
    return Path(out_dir) / task_id / f"seed{seed}" / RESULT_FILE


def read_result(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None
