"""The board's checks of a bundle, run before the store is touched. Every problem is collected, none raised.

A bundle is accepted when, for every result in it: the result itself is valid (the shared
``severe_bench.results.validate_result``: schema, fields, protocol hash recomputed from the recorded values,
ranges, counts); its protocol hash is the registry's official one for that task (profile ``full``, the
result's track) and it is ``comparable``; it is of the manifest's checkpoint; every metric recomputed from its
predictions equals the reported one; the predictions' labels equal the board's test annotations (when the
board has the dataset's annotation files); and the board has no result of the same checkpoint under the same
protocol yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .. import registry
from ..data.subset import evenly_spaced
from ..engine.predictions import recompute_metrics
from ..errors import SevereError
from ..report.layout import SEVERE_TASKS
from ..results import validate_result
from .bundle import Bundle

_KIND_OF_PROTOCOL = {"counting": "counting", "finetune_multilabel": "multi_label"}  # the rest: single_label


@dataclass
class RunCheck:
    """One result of the bundle as the board will store it."""

    task: str
    seed: int
    result: dict
    predictions: dict
    labels_checked: bool = False


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    runs: list[RunCheck] = field(default_factory=list)
    checkpoint_key: str = ""
    status: str = "partial"  # "main" when all eight SEVERE tasks are there under their official protocols

    @property
    def accepted(self) -> bool:
        return not self.problems


def checkpoint_key(checkpoint: dict) -> str | None:
    """What makes two submissions "the same checkpoint": its sha256; a scratch network has none, so
    ``scratch:<architecture>`` stands for it."""
    if checkpoint.get("sha256"):
        return str(checkpoint["sha256"])
    if checkpoint.get("layout") == "scratch" and checkpoint.get("architecture"):
        return f"scratch:{checkpoint['architecture']}"
    return None


def _close(a, b) -> bool:
    # JSON writes NaN as null: either spelling of "no value" matches the other
    a, b = (float("nan") if x is None else x for x in (a, b))
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)):
        return False
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)


def metric_problems(where: str, reported: dict, recomputed: dict) -> list[str]:
    """Every reported metric (and per-class value) against its recomputation from the predictions."""
    out = []
    for name, value in reported.items():
        if name not in recomputed:
            continue
        again = recomputed[name]
        if isinstance(value, dict) and isinstance(again, dict):
            bad = [c for c in sorted(set(value) | set(again)) if not _close(value.get(c), again.get(c))]
            if bad:
                out.append(f"{where}: {name} differs from its recomputation from the predictions for "
                           f"{len(bad)} classes (first: class {bad[0]}: reported {value.get(bad[0])}, recomputed "
                           f"{again.get(bad[0])})")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) or value is None:
            if not _close(value, again):
                out.append(f"{where}: reported {name} = {value} but the submitted predictions give {again}")
    return out


def _prediction_problems(where: str, result: dict, preds: dict) -> list[str]:
    out = []
    proto = result["protocol"]["name"]
    want = _KIND_OF_PROTOCOL.get(proto, "single_label")
    if preds.get("kind") != want:
        return [f"{where}: predictions are of kind {preds.get('kind')!r}, protocol {proto!r} gives {want!r}"]
    videos = preds.get("videos")
    if not isinstance(videos, dict) or not videos:
        return [f"{where}: predictions list no videos"]
    data = result.get("data") or {}
    if data.get("num_test_scored") != len(videos):
        out.append(f"{where}: the result scored {data.get('num_test_scored')} test videos, its predictions hold {len(videos)}")
    if want != "counting":
        c = preds.get("num_classes")
        if c != data.get("num_classes"):
            out.append(f"{where}: predictions have {c} classes, the result {data.get('num_classes')}")
        for video, p in videos.items():
            scores = p.get("scores") if isinstance(p, dict) else None
            if not isinstance(scores, list) or len(scores) != c or not all(
                    isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) for s in scores):
                out.append(f"{where}: video {video!r} needs {c} finite scores")
                break
            label_ok = (isinstance(p.get("labels"), list) and all(isinstance(x, int) and 0 <= x < c for x in p["labels"])
                        if want == "multi_label" else isinstance(p.get("label"), int) and 0 <= p["label"] < c)
            if not label_ok:
                out.append(f"{where}: video {video!r} has no valid label (classes 0..{c - 1})")
                break
    else:
        for video, p in videos.items():
            if not (isinstance(p, dict) and all(isinstance(p.get(k), (int, float)) and not isinstance(p.get(k), bool)
                                                and math.isfinite(p[k]) for k in ("pred", "gt")) and p["gt"] > 0):
                out.append(f"{where}: video {video!r} needs a finite 'pred' and a positive 'gt' count")
                break
    if out:
        return out
    try:
        recomputed = recompute_metrics(preds)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        return [f"{where}: the metrics cannot be recomputed from the predictions ({exc})"]
    return metric_problems(where, result.get("metrics") or {}, recomputed)


def _official_problems(where: str, task_id: str, result: dict) -> list[str]:
    proto = result["protocol"]
    out = []
    if proto.get("profile") != "full" or proto.get("comparable") is not True:
        out.append(f"{where}: a {proto.get('profile')!r}-profile result (comparable: {proto.get('comparable')}); "
                   "the board takes only results of the official full protocol — rerun without --profile")
    data = result.get("data") or {}
    if data.get("complete") is False:  # PROTOCOL.md §8: lists short of the official counts, or videos missing
        reasons = "; ".join(map(str, data.get("incomplete_reasons") or [])) or "see the result's data section"
        out.append(f"{where}: computed on an incomplete dataset ({reasons}); the board takes results on the "
                   "complete official data only")
    try:
        official = registry.get_task(task_id, profile="full", track=proto.get("track"))
    except SevereError as exc:
        return out + [f"{where}: {exc}"]
    if proto.get("hash") != official.protocol_hash:
        out.append(f"{where}: protocol hash {proto.get('hash')} is not the official {task_id} protocol "
                   f"{official.protocol_hash} (profile full, track {proto.get('track')}); results of another protocol "
                   "version or of changed values cannot be compared")
    return out


def _board_overrides(checkpoint: dict):
    """(overrides, origin) the board's checkpoint registry scopes to this checkpoint: the scratch baseline's own
    schedule, a registered checkpoint's (matched by name *and* sha256), nothing for any other checkpoint."""
    from ..checkpoints.registry import load_registry

    reg = load_registry()
    if checkpoint.get("layout") == "scratch":
        return reg.scratch_overrides, "scratch"
    entry = reg.entries.get(checkpoint.get("name") or "")
    sha, known = (checkpoint.get("sha256") or "").lower(), ((entry.source.sha256 or entry.source.sha256_prefix or "") if entry else "").lower()
    if entry and sha and known and sha.startswith(known):
        return entry.overrides, entry.name
    return [], checkpoint.get("name") or "checkpoint"


def _overrides_problems(where: str, task_id: str, result: dict) -> list[str]:
    """The checkpoint-specific protocol values a result ran with must be the ones the board's registry gives
    that checkpoint (PROTOCOL.md §3.3); a submitter's own registry cannot tune them."""
    from ..checkpoints.overrides import apply_overrides, overrides_hash

    proto = result["protocol"]
    overrides, origin = _board_overrides(result["model"]["checkpoint"] | {"architecture": result["model"].get("architecture")})
    task = registry.get_task(task_id, profile="full", track=proto.get("track"))
    want = overrides_hash(apply_overrides(task, overrides, origin)[1])
    got = proto.get("overrides_hash")
    if got != want:
        return [f"{where}: the run applied checkpoint overrides {got or 'none'}, the board's registry gives this "
                f"checkpoint on {task_id} {want or 'none'}; only the registry's scoped overrides are official"]
    return []


def _labels_problems(where: str, task_id: str, result: dict, preds: dict, data_root: Path) -> list[str]:
    """The submitted per-video labels and video list against the board's own copy of the test annotations."""
    task = registry.get_task(task_id, profile="full", track=result["protocol"].get("track"))
    root = registry.resolve_data_root(task, data_root)
    test = registry.read_split(task, root, "test")
    test = evenly_spaced(test, (task.config.get("max_videos") or {}).get("test"))
    expected = {s.video: s for s in test}
    videos = preds["videos"]
    unreadable = set(preds.get("unreadable") or {})
    out = []
    extra = sorted(set(videos) - set(expected))
    absent = sorted(set(expected) - set(videos) - unreadable)
    if extra:
        out.append(f"{where}: {len(extra)} scored videos are not in the board's test list (first: {extra[0]})")
    if absent:
        out.append(f"{where}: {len(absent)} test videos are neither scored nor reported unreadable (first: {absent[0]})")
    wrong = []
    for video, p in videos.items():
        s = expected.get(video)
        if s is None:
            continue
        if preds["kind"] == "counting":
            same = _close(float(p["gt"]), float(s.label))
            submitted, board = p["gt"], s.label
        elif preds["kind"] == "multi_label":
            submitted, board = sorted(p["labels"]), sorted(s.class_indices())
            same = submitted == board
        else:
            submitted, board = p["label"], s.label
            same = submitted == board
        if not same:
            wrong.append((video, submitted, board))
    if wrong:
        v, a, b = wrong[0]
        out.append(f"{where}: {len(wrong)} videos carry labels that differ from the board's test annotations "
                   f"(first: {v}: submitted {a}, annotation {b})")
    return out


def check_bundle(bundle: Bundle, duplicates_of, data_root: Path | None = None) -> Verdict:
    """Every check of a readable bundle. ``duplicates_of(key, hashes, name)`` returns the board's conflicting
    rows as sentences (store.py), read-only; ``data_root`` holds the board's annotation files when it has them."""
    verdict = Verdict()
    manifest = bundle.manifest
    ckpt = manifest.get("checkpoint") if isinstance(manifest.get("checkpoint"), dict) else {}
    key = checkpoint_key(ckpt)
    if key is None:
        verdict.problems.append("manifest.json: the checkpoint has no sha256 (only a scratch baseline may go without)")
    verdict.checkpoint_key = key or ""
    runs = bundle.runs()
    if not runs:
        verdict.problems.append("the bundle holds no results")
    listed = {(r.get("task"), r.get("seed")) for r in manifest.get("runs") or [] if isinstance(r, dict)}
    if listed != {(t, s) for t, s, _, _ in runs}:
        verdict.problems.append("manifest.json: 'runs' does not list exactly the bundle's results")
    for task_id, seed, result, preds in runs:
        where = f"{task_id} seed {seed}"
        problems = [f"{where}: {p}" for p in validate_result(result)]
        if problems:
            verdict.problems += problems
            continue
        if result["task"]["id"] != task_id or result["seed"] != seed:
            verdict.problems.append(f"{where}: the result is of {result['task']['id']} seed {result['seed']}, "
                                    "not what its place in the bundle says")
            continue
        model = result["model"]
        if model["checkpoint"].get("sha256") != ckpt.get("sha256") or model.get("architecture") != ckpt.get("architecture"):
            verdict.problems.append(f"{where}: result of checkpoint {(model['checkpoint'].get('sha256') or 'none')[:12]} "
                                    f"({model.get('architecture')}), not the manifest's "
                                    f"{(ckpt.get('sha256') or 'none')[:12]} ({ckpt.get('architecture')})")
        official = _official_problems(where, task_id, result)
        if not official:
            try:
                official = _overrides_problems(where, task_id, result)
            except SevereError as exc:
                official = [f"{where}: cannot check the checkpoint overrides: {exc}"]
        verdict.problems += official
        pred_problems = _prediction_problems(where, result, preds) if isinstance(preds, dict) else [
            f"{where}: no predictions"]
        verdict.problems += pred_problems
        run = RunCheck(task_id, seed, result, preds)
        if data_root is not None and not pred_problems:
            try:
                label_problems = _labels_problems(where, task_id, result, preds, data_root)
            except SevereError as exc:  # the board has no readable copy of this dataset: say so, do not guess
                label_problems = [f"{where}: cannot read the board's test annotations: {exc}"]
            verdict.problems += label_problems
            run.labels_checked = not label_problems
        verdict.runs.append(run)
    if key and verdict.runs:
        hashes = sorted({r.result["protocol"]["hash"] for r in verdict.runs})
        name = (manifest.get("entry") or {}).get("name")
        verdict.problems += duplicates_of(key, hashes, name)
    official_tasks = {r.task for r in verdict.runs}
    verdict.status = "main" if set(SEVERE_TASKS) <= official_tasks else "partial"
    return verdict
