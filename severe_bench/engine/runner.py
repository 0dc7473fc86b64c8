"""``severe eval``: task YAML -> dataset -> clips -> model -> metric -> result JSON, for each task and seed.

A finished (task, seed) with the same protocol hash and checkpoint is skipped; an interrupted one resumes
from its last completed pass. Results record their full provenance.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .. import registry
from ..data.completeness import completeness, count_lists
from ..video.frames import video_present
from ..data.subset import apply_train_subset, evenly_spaced, sample_list_hash, write_sample_list
from ..checkpoints.overrides import applied_record, apply_overrides, merged_values, overrides_hash
from ..atomic import check_writable_dir, ensure_dir
from ..errors import ConfigError, ResultError, SevereError
from ..provenance import code_info, code_version, command_line, device_info, library_versions, utc_now
from ..results import RESULT_FILE, SCHEMA, read_result, result_path, write_json
from .context import RunContext
from . import distributed
from .lock import run_lock
from .state import STATE_FILE
from .timing import TIMING_FILE, RunClock
from .trainer import default_workers

# protocol name -> module with ``run(ctx) -> Outcome``
PROTOCOL_RUNNERS = {
    "finetune": "severe_bench.engine.finetune",
    "finetune_multilabel": "severe_bench.engine.finetune",
    "finetune_vit": "severe_bench.engine.finetune",
    "linear": "severe_bench.engine.finetune",
    "linear_frozen_bn": "severe_bench.engine.finetune",
    "linear_cached": "severe_bench.engine.cached_probe",
    "counting": "severe_bench.engine.counting",
}
# the metrics each runner reports (engine/metrics.py); a task's reported metric must be one of them
_CLASSIFICATION = ("top1", "top5", "mean_class_accuracy")
PROTOCOL_METRICS = {
    "finetune": _CLASSIFICATION, "finetune_vit": _CLASSIFICATION, "linear": _CLASSIFICATION,
    "linear_frozen_bn": _CLASSIFICATION,
    "linear_cached": _CLASSIFICATION,
    "finetune_multilabel": ("map",), "counting": ("counting_error", "obo_accuracy"),
}


def check_runnable(task) -> None:
    """Fail before any training when the task names a protocol or metric no runner has."""
    name = task.protocol.get("name")
    if name not in PROTOCOL_RUNNERS:
        raise ConfigError(f"task {task.id}: unknown protocol {name!r}; known: {', '.join(sorted(PROTOCOL_RUNNERS))}")
    if task.metric["name"] not in PROTOCOL_METRICS[name]:
        raise ConfigError(f"task {task.id}: protocol {name!r} reports {', '.join(PROTOCOL_METRICS[name])}, "
                          f"not metric {task.metric['name']!r}")


@dataclass
class EvalOptions:
    checkpoint: str
    out_dir: Path
    data_root: str | None = None
    profile: str = "full"
    seeds: tuple = (0,)
    device: str = "auto"
    workers: int | None = None   # None: the cores available per process (engine.trainer.default_workers)
    label: str | None = None
    arch: str | None = None
    allow_partial: bool = False
    trust_checkpoint: bool = False
    restart: bool = False
    precision: str = "auto"        # engine.trainer.PRECISIONS
    compile: bool = False
    refresh: bool = False  # download a registry/URL checkpoint again even when a copy is cached


def pick_device(name: str) -> torch.device:
    """The torch device of ``--device``, checked before anything is loaded: a device that torch does not know,
    one this machine lacks, or one that cannot train (``meta``) is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    usable = "auto, cpu, cuda or cuda:N"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise SevereError(f"--device {name!r} is not a device; use {usable}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SevereError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SevereError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                              f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    elif device.type == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise SevereError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    elif device.type != "cpu":
        raise SevereError(f"--device {name}: severe-bench runs on {usable}, not {device.type!r}")
    return device


def track_of(architecture: str) -> str:
    return "vit" if architecture.startswith("vit") else "cnn"


def _validate_labels(task, samples, num_classes: int | None, split: str) -> None:
    if num_classes is None:
        return
    for s in samples:
        bad = [lab for lab in s.class_indices() if not 0 <= lab < num_classes]
        if bad:
            raise SevereError(f"task {task.id}: {split} sample {s.video} has label {bad[0]} outside 0..{num_classes - 1}")


def _num_classes(task, root) -> int | None:
    if task.protocol["name"] == "counting":
        return None
    if task.num_classes:
        return int(task.num_classes)
    names = registry.class_names(task, root)
    if not names:
        raise SevereError(f"task {task.id}: num_classes is not set and the annotations name no classes")
    return len(names)


def for_checkpoint(task, info: dict):
    """The task as it runs for this checkpoint: its scoped overrides applied (PROTOCOL.md §3.3).
    Returns ``(effective task, applied overrides)``; the effective task keeps the official protocol hash."""
    return apply_overrides(task, info.get("overrides") or [], info.get("name") or "checkpoint")


def effective_normalisation(proto: dict, info: dict) -> dict:
    """The protocol's input normalisation (after the checkpoint's scoped overrides, e.g. TCLR's none/BGR on the
    action-recognition tasks); an entry-level ``normalisation`` other than the registry default applies to
    every protocol."""
    from ..checkpoints.registry import default_quirks, load_registry

    norm = dict(proto.get("normalisation") or {})
    quirk = info.get("normalisation")
    if quirk and info.get("layout") != "scratch" and quirk != default_quirks(load_registry())["normalisation"]:
        norm = {"mean": quirk.get("mean"), "std": quirk.get("std"), "channel_order": quirk.get("channel_order", "RGB")}
    return norm


def flops_input(proto: dict) -> list[int] | None:
    """The (1, C, T, H, W) clip shape the GFLOPs are counted at: one clip of this protocol's input."""
    inp = proto.get("input") or {}
    try:
        return [1, 3, int(inp["frames"]), int(inp["crop"]), int(inp["crop"])]
    except (KeyError, TypeError, ValueError):
        return None


def _flops(info: dict, proto: dict):
    """fvcore GFLOPs and parameters of the backbone at this protocol's input (TCLR's layer4 included)."""
    from ..checkpoints import flops_and_params

    shape = flops_input(proto)
    if shape is None:
        return None, None
    try:
        return flops_and_params(info["architecture"], tuple(shape), **(info.get("arch_kwargs") or {}))
    except Exception:  # FLOP counting is informative only; never fail an evaluation over it
        return None, None


def _class_names(task, root, num_classes) -> list[str] | None:
    """Names of the classes behind ``metrics.per_class_accuracy`` (index order), when the annotations have them."""
    if num_classes is None:
        return None
    try:
        names = registry.class_names(task, root)
    except SevereError:
        return None
    return list(names) if names and len(names) == num_classes else None


def _video_backend() -> str | None:
    from ..video.reader import resolve_backend

    try:
        return resolve_backend()
    except SevereError:
        return None


def evaluate(task_ids: list[str], opts: EvalOptions, log: Callable[[str], None] = print) -> list[Path]:
    from ..checkpoints import load_checkpoint

    from ..video.reader import resolve_backend

    device = distributed.setup(pick_device(opts.device))  # under torchrun: this rank's device
    if distributed.rank() != 0:
        log = _quiet  # one rank speaks (and writes); the others train their share
    resolve_backend()  # a bad SEVERE_VIDEO_BACKEND fails here, not inside a data-loader worker
    check_writable_dir(opts.out_dir, "--out")  # before the checkpoint loads and anything trains
    loaded = load_checkpoint(opts.checkpoint, arch=opts.arch, allow_partial=opts.allow_partial, trust=opts.trust_checkpoint,
                             refresh=opts.refresh)
    info = loaded.info
    arch = info["architecture"]
    from ..models import backbone_spec

    if backbone_spec(arch).family == "image":  # per-frame 2D nets exist for `severe bias`, not for the protocols
        raise SevereError(f"{opts.checkpoint} is a 2D image model ({arch}): it is the representation of "
                          "`severe bias`; `severe eval` evaluates video backbones (R(2+1)D-18, R3D-18, ViT)")
    label = opts.label or info.get("label") or info.get("name") or Path(opts.checkpoint).stem
    log(f"checkpoint {opts.checkpoint}: {arch}, layout {info.get('layout')}, sha256 {(info.get('sha256') or '-')[:12]}")
    if info.get("nonfinite"):
        log(f"  WARNING: {len(info['nonfinite'])} checkpoint tensors hold NaN or infinity "
            f"({', '.join(info['nonfinite'][:5])}); training will stop at the first non-finite loss")
    if info.get("missing"):
        missing, wrong = info["missing"], info.get("shape_mismatch") or []
        shown = ", ".join(missing[:8]) + (f" ... and {len(missing) - 8} more" if len(missing) > 8 else "")
        log(f"  WARNING: partial load (--allow-partial): {len(missing)} backbone keys missing"
            f"{f' ({len(wrong)} of them in the file with the wrong shape)' if wrong else ''}, left randomly "
            f"initialised and recorded in the result: {shown}")
    tasks = [registry.get_task(t, profile=opts.profile, track=track_of(arch)) for t in task_ids]  # fail fast
    for task in tasks:
        check_runnable(task)
        for_checkpoint(task, info)  # an override that does not fit the task fails before any training
    written = []
    for task in tasks:
        run_task, applied = for_checkpoint(task, info)
        located = registry.locate_data_root(task, opts.data_root)
        root = located.path
        log(f"{task.id}: data root {root} ({located.how})")
        train = registry.read_split(task, root, "train")
        test = registry.read_split(task, root, "test")
        full_train, full_test = len(train), len(test)
        found, missing = count_lists(train, test, root)  # the full lists, before any subset or cap
        train = apply_train_subset(train, task.train_subset, root)
        cap = task.config.get("max_videos") or {}  # smoke profile only: a few videos per split
        train, test = evenly_spaced(train, cap.get("train")), evenly_spaced(test, cap.get("test"))
        num_classes = _num_classes(task, root)
        names = _class_names(task, root, num_classes)
        _validate_labels(task, train, num_classes, "train")
        _validate_labels(task, test, num_classes, "test")
        for seed in opts.seeds:
            path = result_path(opts.out_dir, task.id, seed)
            # one run per (out, task, seed): a second run into this folder stops here (rank 0 holds the lock)
            with run_lock(path.parent, f"{task.id} seed {seed}") if distributed.rank() == 0 else nullcontext():
                previous = None if opts.restart else _previous_result(path)
                if previous and not opts.restart and previous["protocol"]["hash"] == task.protocol_hash \
                        and previous["model"]["checkpoint"].get("sha256") == info.get("sha256") \
                        and previous["protocol"].get("overrides_hash") == overrides_hash(applied):
                    log(f"{task.id} seed {seed}: done already ({path}); skipping")
                    written.append(path)
                    continue
                written.append(_run_one(task, run_task, applied, seed, root, train, test, full_train, num_classes,
                                        loaded, label, device, opts, log, counts=(found, missing),
                                        full_test=full_test, class_names=names))
    return written


def _run_one(task, run_task, applied, seed, root, train, test, full_train, num_classes, loaded, label, device,
             opts, log, counts=None, full_test=None, class_names=None) -> Path:
    """``task`` is the official task (its hash and values are recorded); ``run_task`` is what runs for this
    checkpoint (``applied`` overrides merged into its protocol); ``counts`` = (found, missing) of the full lists;
    ``full_test`` the test list's length before the smoke cap; ``class_names`` in index order (or None)."""
    info = loaded.info
    work = ensure_dir(result_path(opts.out_dir, task.id, seed).parent)
    writer = distributed.rank() == 0
    if writer:
        log = run_log(log, work / RUN_LOG)
    # A saved state resumes only the run it came from: same protocol, checkpoint, seed and video lists.
    signature = {"protocol_hash": task.protocol_hash, "overrides_hash": overrides_hash(applied),
                 "checkpoint_sha256": info.get("sha256"), "seed": seed,
                 "train_list_sha256": sample_list_hash(train), "test_list_sha256": sample_list_hash(test)}
    sig_path = work / "run.json"
    prev = read_signature(sig_path)
    if not opts.restart:
        if prev is not None and prev != signature:
            # reached for a finished result too: evaluate() skips only a result of this protocol and checkpoint
            raise SevereError(
                f"{work} holds a run (finished or not) of a different protocol, checkpoint overrides, checkpoint or "
                f"video list ({prev}); "
                "use another --out or pass --restart to discard it"
            )
        if prev is None and (work / STATE_FILE).exists():
            raise SevereError(f"{work / STATE_FILE} has no run.json saying which run it belongs to; "
                              "use another --out or pass --restart to discard it")
    distributed.barrier()  # every rank has read the previous signature before rank 0 replaces it
    if opts.restart and writer:
        for stale in (STATE_FILE, RESULT_FILE, TIMING_FILE):
            (work / stale).unlink(missing_ok=True)
    if writer:
        write_json(sig_path, signature)
    distributed.barrier()

    subset_hash = None
    if task.train_subset:
        subset_hash = sample_list_hash(train) if not writer else write_sample_list(train, work / "train_subset.txt")
    log(f"{task.id} seed {seed}: {len(train)} train / {len(test)} test videos, "
        f"protocol {task.protocol['name']} {task.protocol_hash} ({task.profile})")
    for a in applied:
        log(f"  checkpoint override ({a['checkpoint']}): " + ", ".join(f"{k} {v!r} -> {_at(a['set'], k)!r}"
                                                                      for k, v in a["replaced"].items()))
    ctx = RunContext(
        task=run_task, root=root, train_samples=train, test_samples=test, num_classes=num_classes,
        checkpoint=_fresh(loaded, seed), normalisation=effective_normalisation(run_task.protocol, info), seed=seed,
        device=device, work_dir=work, workers=opts.workers if opts.workers is not None else default_workers(),
        log=log, overrides=merged_values(applied), precision=opts.precision, compile=opts.compile,
    )
    runner = importlib.import_module(PROTOCOL_RUNNERS[run_task.protocol["name"]])
    # wall time over every invocation of this run, recorded beside the state after each pass and at the end
    clock = RunClock(work / TIMING_FILE, resuming=(work / STATE_FILE).exists(), device=str(device), enabled=writer)
    ctx.clock = clock
    try:
        outcome = runner.run(ctx)
    finally:
        if (work / STATE_FILE).exists():
            clock.save()
    timing = clock.record()
    wall = timing["wall_time_s"]
    gflops, params = _flops(info, run_task.protocol)
    metric = task.metric
    value = outcome.metrics.get(metric["name"])
    found, missing = counts or count_lists(train, test, root)
    # PROTOCOL.md §2.2: official vs found counts; a missing video is counted once (on disk), not again as unreadable
    status = completeness(task, found, missing, sum(video_present(Path(root) / v) for v in outcome.unreadable))
    if not status["complete"]:
        log(f"{task.id}: computed on an INCOMPLETE dataset: {'; '.join(status['reasons'])}")
    code = code_info()
    result = {
        "schema": SCHEMA,
        "task": {"id": task.id, "name": task.name, "factor": task.factor, "dataset": task.dataset.get("name")},
        "protocol": {"name": task.protocol["name"], "hash": task.protocol_hash, "profile": task.profile,
                     "comparable": task.comparable, "track": task.config.get("track", "cnn"),
                     "values": task.hashed_values(), **applied_record(run_task, applied),
                     "normalisation": ctx.normalisation},
        "metric": {"name": metric["name"], "value": value, "higher_is_better": metric["higher_is_better"],
                   "unit": metric.get("unit", "")},
        "metrics": outcome.metrics,
        "model": {"label": label, "architecture": info["architecture"],
                  "checkpoint": {k: info.get(k) for k in ("name", "path", "sha256", "layout", "source")},
                  "missing_keys": list(info.get("missing") or []),
                  "shape_mismatch": list(info.get("shape_mismatch") or []), "params": params, "gflops": gflops,
                  "gflops_input": flops_input(run_task.protocol) if gflops is not None else None},
        "seed": seed,
        "code_version": code_version(code),
        "code": code,
        "libraries": library_versions(),
        "command": command_line(),
        "device": device_info(device),
        "wall_time_s": wall,
        "engine": {**outcome.engine, "history": outcome.history, "invocations": timing["invocations"]},
        "data": {"root": str(root), "num_train": outcome.num_train, "num_train_full": full_train,
                 "num_test": len(test), "num_test_full": full_test if full_test is not None else len(test),
                 "num_test_scored": outcome.num_test, "num_classes": num_classes, "class_names": class_names,
                 "train_list_sha256": signature["train_list_sha256"], "test_list_sha256": signature["test_list_sha256"],
                 "train_subset_hash": subset_hash, "video_backend": _video_backend(),
                 "unreadable_videos": {"count": len(outcome.unreadable), "paths": outcome.unreadable},
                 "truncated_videos": {"count": len(outcome.truncated), "paths": sorted(outcome.truncated)},
                 "official_counts": status["official"], "found_counts": status["found"],
                 "missing_videos": status["missing"], "complete": status["complete"],
                 "incomplete_reasons": status["reasons"]},
        "created_at": utc_now(),
    }
    path = result_path(opts.out_dir, task.id, seed)
    if not writer:
        distributed.barrier()  # rank 0 writes the result
        return path
    if outcome.predictions:
        write_json(work / "predictions.json", outcome.predictions)
    write_json(path, result)
    for done in (STATE_FILE, TIMING_FILE):  # the result is final; the training state is not needed
        (work / done).unlink(missing_ok=True)
    distributed.barrier()
    shown = f"{value:.4g}" if isinstance(value, (int, float)) and value == value else str(value)
    log(f"{task.id} seed {seed}: {metric['name']} = {shown}{metric.get('unit', '')}  "
        f"(unreadable videos: {len(outcome.unreadable)}, truncated: {len(outcome.truncated)}; {wall:.0f}s) -> {path}")
    return path


def _at(values: dict, dotted: str):
    for key in dotted.split("."):
        values = values[key]
    return values


RUN_LOG = "run.log"


def run_log(log: Callable[[str], None], path: Path) -> Callable[[str], None]:
    """``log`` that also appends each line, time-stamped, to the run's log file beside its result."""
    def both(msg: str) -> None:
        log(msg)
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{utc_now()} {msg}\n")
    return both


def _quiet(_msg: str) -> None:
    pass


def _fresh(loaded, seed: int):
    """Each task fine-tunes its own copy of the pre-trained weights. A scratch network is initialised anew
    from the run's seed, so the "no pre-training" baseline is reproducible and differs between seeds."""
    clone = copy.copy(loaded)
    if loaded.info.get("layout") == "scratch":
        from ..models import create_backbone

        torch.manual_seed(seed)
        clone.backbone = create_backbone(loaded.info["architecture"], **(loaded.info.get("arch_kwargs") or {})).eval()
    else:
        clone.backbone = copy.deepcopy(loaded.backbone)
    return clone


def _previous_result(path: Path) -> dict | None:
    """The finished result in ``--out``, validated; a damaged one is an error that says what to do."""
    try:
        return read_result(path)
    except ResultError as exc:
        raise ResultError(f"{exc}. Pass --restart to run it again (the file is replaced), or use another --out") \
            from None


def read_signature(path: Path) -> dict | None:
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # damaged: treated as absent
        return None
