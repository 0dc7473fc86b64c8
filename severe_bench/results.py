"""The result JSON written by ``severe eval`` (schema ``severe-bench/result/v1``, see docs/CONVENTIONS.md):
writing it atomically, reading it with clear errors, and validating it (``validate_result``) before anyone
believes its numbers (tables, plots, the leaderboard, the "done already" check of ``severe eval``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .atomic import atomic_write_text
from .errors import ResultError

SCHEMA = "severe-bench/result/v1"
RESULT_FILE = "result.json"

# metric name -> (lowest, highest, higher_is_better); percentages are 0..100, counting values are fractions
METRIC_RANGES = {
    "top1": (0.0, 100.0, True),
    "top5": (0.0, 100.0, True),
    "mean_class_accuracy": (0.0, 100.0, True),
    "map": (0.0, 100.0, True),
    "counting_error": (0.0, math.inf, False),
    "obo_accuracy": (0.0, 1.0, True),
}
PERCENT_METRICS = {"top1", "top5", "mean_class_accuracy", "map"}
# per-class tables inside ``metrics`` (percentages; classes without test videos are absent or null)
_PER_CLASS = ("per_class_accuracy", "per_class_ap")


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
    """Write ``payload`` atomically (unique temporary name, then rename): never half a file."""
    atomic_write_text(Path(path), json.dumps(_clean(payload), indent=2, sort_keys=False) + "\n")


def result_path(out_dir: Path, task_id: str, seed: int) -> Path:
    return Path(out_dir) / task_id / f"seed{seed}" / RESULT_FILE


def load_json(path: Path, what: str = "result JSON"):
    """The parsed JSON at ``path``; a ``ResultError`` naming the file when it cannot be read or parsed
    (including JSON nested too deeply for Python's parser)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise ResultError(f"{path}: is a folder, not a {what}") from None
    except UnicodeDecodeError as exc:
        raise ResultError(f"{path}: cannot read {what}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ResultError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultError(f"{path}: damaged {what}: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ResultError(f"{path}: damaged {what}: nested too deeply to parse") from None
    except ValueError as exc:  # e.g. an integer literal with too many digits
        raise ResultError(f"{path}: damaged {what}: {exc}") from None


def read_result(path: Path) -> dict | None:
    """The valid result at ``path``; None when there is no file; ``ResultError`` when it is damaged or invalid."""
    path = Path(path)
    if not path.exists():
        return None
    doc = load_json(path)
    problems = validate_result(doc)
    if problems:
        raise ResultError(f"{path}: invalid result: {'; '.join(problems)}")
    return doc


# --- validation ----------------------------------------------------------------------------------------

_MISSING = object()


def _lookup(doc: dict, dotted: str):
    cur = doc
    for key in dotted.split("."):
        if not isinstance(cur, dict) or key not in cur:
            return _MISSING
        cur = cur[key]
    return cur


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_KINDS = {
    "string": lambda v: isinstance(v, str) and v != "",
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
    "integer": _is_int,
    "finite number": _is_number,
}
# (field, kind): what every result must carry
_REQUIRED = [
    ("task.id", "string"),
    ("protocol.name", "string"), ("protocol.hash", "string"), ("protocol.profile", "string"),
    ("protocol.comparable", "boolean"), ("protocol.values", "object"),
    ("metric.name", "string"), ("metric.value", "finite number"), ("metric.higher_is_better", "boolean"),
    ("metrics", "object"),
    ("model", "object"), ("model.checkpoint", "object"),
    ("seed", "integer"),
    ("data", "object"),
]
# (field, kind): checked only when present (and not null)
_OPTIONAL = [
    ("task.name", "string"), ("task.factor", "string"), ("task.dataset", "string"),
    ("metric.unit", None), ("model.label", "string"), ("model.architecture", "string"),
    ("model.missing_keys", "list"), ("code_version", "string"), ("created_at", "string"),
    ("wall_time_s", "finite number"),
    ("data.num_train", "integer"), ("data.num_train_full", "integer"), ("data.num_test", "integer"),
    ("data.num_test_scored", "integer"), ("data.unreadable_videos", "object"),
    ("data.unreadable_videos.count", "integer"), ("data.unreadable_videos.paths", "list"),
    ("data.truncated_videos", "object"), ("data.truncated_videos.count", "integer"),
    ("data.truncated_videos.paths", "list"),
]


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_metric_value(name: str, value, where: str) -> list[str]:
    if name not in METRIC_RANGES or not _is_number(value):
        return []
    lo, hi, _ = METRIC_RANGES[name]
    if not lo <= value <= hi:
        span = f"[{lo:g}, {hi:g}]" if math.isfinite(hi) else f">= {lo:g}"
        return [f"{where} = {value!r} is outside the range of {name} ({span})"]
    return []


def _check_protocol(doc: dict) -> list[str]:
    from .registry import protocol_hash_of

    problems = []
    proto = doc["protocol"]
    values, profile, comparable = proto["values"], proto["profile"], proto["comparable"]
    try:
        recomputed = protocol_hash_of(values)
    except (RecursionError, TypeError, ValueError):
        return ["protocol.values cannot be hashed (nested too deeply or not plain JSON)"]
    if recomputed != proto["hash"]:
        problems.append(f"protocol.hash {proto['hash']!r} does not match the recorded protocol values "
                        f"(they hash to {recomputed!r}): the values or the hash were edited")
    if values.get("profile") != profile:
        problems.append(f"protocol.profile {profile!r} differs from the profile the values were resolved with "
                        f"({values.get('profile')!r})")
    if comparable and profile != "full":
        problems.append(f"a {profile!r}-profile result cannot be comparable (only the full profile is)")
    elif not comparable and profile == "full":
        problems.append("a full-profile result must say comparable: true")
    return problems


def _check_metrics(doc: dict) -> list[str]:
    problems = []
    metric, metrics = doc["metric"], doc["metrics"]
    name, value = metric["name"], metric["value"]
    if name not in METRIC_RANGES:
        return [f"metric.name {name!r} is not a metric severe-bench reports ({', '.join(sorted(METRIC_RANGES))})"]
    problems += _check_metric_value(name, value, "metric.value")
    if metric["higher_is_better"] != METRIC_RANGES[name][2]:
        problems.append(f"metric.higher_is_better is {metric['higher_is_better']} but {name} is "
                        f"{'higher' if METRIC_RANGES[name][2] else 'lower'}-is-better")
    unit = metric.get("unit")
    if unit not in (None, "", "%", "fraction"):
        problems.append(f"metric.unit {_short(unit)} is neither '%' nor 'fraction'")
    elif unit == "%" and name not in PERCENT_METRICS:
        problems.append(f"metric.unit is '%' but {name} is a fraction")
    elif unit == "fraction" and name in PERCENT_METRICS:
        problems.append(f"metric.unit is 'fraction' but {name} is a percentage")
    if name not in metrics:
        problems.append(f"metrics lacks the reported metric {name!r}")
    elif metrics[name] != value:
        problems.append(f"metric.value {value!r} differs from metrics.{name} {_short(metrics[name])}")
    for key, v in metrics.items():
        if key in METRIC_RANGES and key != name:
            if v is not None and not _is_number(v):
                problems.append(f"metrics.{key} must be a finite number or null, got {_short(v)}")
            else:
                problems += _check_metric_value(key, v, f"metrics.{key}")
        elif key in _PER_CLASS:
            if not isinstance(v, dict):
                problems.append(f"metrics.{key} must be an object, got {_short(v)}")
                continue
            bad = [c for c, x in v.items() if x is not None and not (_is_number(x) and 0 <= x <= 100)]
            if bad:
                problems.append(f"metrics.{key} has {len(bad)} value(s) outside [0, 100] "
                                f"(class {bad[0]}: {_short(v[bad[0]])})")
    return problems


def _check_data(doc: dict) -> list[str]:
    problems = []
    data = doc["data"]
    for key in ("num_train", "num_train_full", "num_test", "num_test_scored", "num_classes"):
        v = data.get(key)
        if _is_int(v) and v < 0:
            problems.append(f"data.{key} = {v} is negative")
    scored, total = data.get("num_test_scored"), data.get("num_test")
    if _is_int(scored) and _is_int(total) and scored > total:
        problems.append(f"data.num_test_scored ({scored}) exceeds data.num_test ({total})")
    for key in ("unreadable_videos", "truncated_videos"):
        listed = data.get(key)
        if isinstance(listed, dict):
            count, paths = listed.get("count"), listed.get("paths")
            if _is_int(count) and count < 0:
                problems.append(f"data.{key}.count = {count} is negative")
            if _is_int(count) and isinstance(paths, list) and count != len(paths):
                problems.append(f"data.{key}.count ({count}) differs from its {len(paths)} paths")
    return problems


def validate_result(doc) -> list[str]:
    """The problems of a parsed result JSON (schema, protocol hash, value ranges); empty when it is valid.

    Extra fields are allowed (later versions add provenance). Checks: the schema id; the required fields and
    their types; the protocol hash recomputed from ``protocol.values``; the profile and ``comparable`` agree
    (only the full profile is comparable); each metric within its range (percentages in [0, 100],
    ``counting_error`` >= 0, ``obo_accuracy`` in [0, 1]) and ``metric.value`` equal to ``metrics[name]``;
    counts non-negative and consistent.
    """
    try:
        return _validate(doc)
    except RecursionError:
        return ["the document is nested too deeply to check"]


def _validate(doc) -> list[str]:
    if not isinstance(doc, dict):
        return [f"a result is a JSON object, not {type(doc).__name__}"]
    if doc.get("schema") != SCHEMA:
        return [f"schema is {_short(doc.get('schema'))}, expected {SCHEMA!r}"]
    problems = []
    for dotted, kind in _REQUIRED:
        v = _lookup(doc, dotted)
        if v is _MISSING:
            problems.append(f"lacks {dotted!r}")
        elif not _KINDS[kind](v):
            problems.append(f"{dotted} must be a {kind}, got {_short(v)}")
    for dotted, kind in _OPTIONAL:
        v = _lookup(doc, dotted)
        if v is _MISSING or v is None or kind is None:
            continue
        if not _KINDS[kind](v):
            problems.append(f"{dotted} must be a {kind}, got {_short(v)}")
    if problems:  # the checks below rely on the fields having their types
        return problems
    if doc["seed"] < 0:
        problems.append(f"seed = {doc['seed']} is negative")
    wall = doc.get("wall_time_s")
    if _is_number(wall) and wall < 0:
        problems.append(f"wall_time_s = {wall} is negative")
    model = doc["model"]
    if not (model.get("label") or model["checkpoint"].get("name")):
        problems.append("result has neither model.label nor model.checkpoint.name")
    missing = model.get("missing_keys")
    if isinstance(missing, list) and not all(isinstance(k, str) for k in missing):
        problems.append("model.missing_keys must list key names (strings)")
    problems += _check_protocol(doc)
    problems += _check_metrics(doc)
    problems += _check_data(doc)
    return problems
