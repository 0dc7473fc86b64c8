"""Scoped checkpoint overrides (PROTOCOL.md §3.3): protocol values a checkpoint was evaluated with, each
reaching only the protocols and/or tasks it names.

In ``checkpoints.yaml`` an entry (or the ``scratch:`` section) carries a list::

    overrides:
      - protocols: [finetune]            # protocol names (task.protocol.name) it applies to
        tasks: [ucf101, gym99]           # and/or task ids; when both are given, both must match
        set: {optimizer: {lr: 1.0e-3}}   # protocol values, merged into the task's protocol
        source: configs/benchmark/*_avid.yaml base_lr 0.001

The task's official protocol hash is not changed by an override (tables compare on it); what was applied is
recorded beside it (``applied_record``) with its own hash.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import replace

from ..errors import CheckpointError, ConfigError

_FIELDS = {"protocols", "tasks", "set", "source"}


def _names(value, key: str, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CheckpointError(f"{where}: override {key!r} must be a list of names, got {value!r}")
    return list(value)


def parse_overrides(items, where: str) -> list[dict]:
    """Validate a checkpoint's ``overrides:`` list; returns plain dicts (they travel in ``LoadedCheckpoint.info``)."""
    from ..engine.runner import PROTOCOL_RUNNERS

    if items is None:
        return []
    if not isinstance(items, list):
        raise CheckpointError(f"{where}: overrides must be a list of {{protocols/tasks, set, source}} items")
    out = []
    for i, item in enumerate(items):
        at = f"{where}: override {i + 1}"
        if not isinstance(item, dict):
            raise CheckpointError(f"{at}: expected a mapping, got {item!r}")
        unknown = set(item) - _FIELDS
        if unknown:
            raise CheckpointError(f"{at}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_FIELDS)}")
        protocols, tasks = _names(item.get("protocols"), "protocols", at), _names(item.get("tasks"), "tasks", at)
        if not protocols and not tasks:
            raise CheckpointError(f"{at}: names no protocols or tasks; an override must say where it applies")
        bad = [p for p in protocols if p not in PROTOCOL_RUNNERS]
        if bad:
            raise CheckpointError(f"{at}: unknown protocol(s) {bad}; known: {', '.join(sorted(PROTOCOL_RUNNERS))}")
        values = item.get("set")
        if not isinstance(values, dict) or not values:
            raise CheckpointError(f"{at}: 'set' must be a non-empty mapping of protocol values")
        out.append({"protocols": protocols, "tasks": tasks, "set": copy.deepcopy(values),
                    "source": str(item.get("source", "")).strip()})
    return out


def applies(override: dict, protocol_name: str, task_id: str) -> bool:
    return ((not override["protocols"] or protocol_name in override["protocols"])
            and (not override["tasks"] or task_id in override["tasks"]))


def _merge_checked(protocol: dict, values: dict, path: str, replaced: dict, where: str) -> None:
    """Write ``values`` into ``protocol`` in place; every key must already exist (no silent new values)."""
    for key, value in values.items():
        here = f"{path}.{key}" if path else key
        if key not in protocol:
            raise ConfigError(f"{where} sets protocol.{here}, which this task's protocol does not have "
                              f"(its keys here: {', '.join(sorted(protocol)) or 'none'})")
        if isinstance(value, dict) and isinstance(protocol[key], dict):
            _merge_checked(protocol[key], value, here, replaced, where)
        else:
            replaced[here] = copy.deepcopy(protocol[key])
            protocol[key] = copy.deepcopy(value)


def apply_overrides(task, overrides: list[dict], origin: str):
    """The task as it runs for this checkpoint: ``(effective task, applied)``.

    The effective task's ``protocol`` has the matching overrides merged in; its ``protocol_hash`` stays the
    task's official one. ``applied`` lists what was changed (empty when nothing matched)."""
    proto = copy.deepcopy(task.protocol)
    applied = []
    for ov in overrides or []:
        if not applies(ov, proto.get("name", ""), task.id):
            continue
        replaced: dict = {}
        _merge_checked(proto, ov["set"], "", replaced, f"override of checkpoint {origin!r} for task {task.id}")
        applied.append({"checkpoint": origin, "protocols": list(ov["protocols"]), "tasks": list(ov["tasks"]),
                        "set": copy.deepcopy(ov["set"]), "replaced": replaced, "source": ov.get("source", "")})
    if not applied:
        return task, []
    config = {**task.config, "protocol": proto}
    return replace(task, config=config, _hash=task.protocol_hash), applied


def overrides_hash(applied: list[dict]) -> str | None:
    """16 hex digits over what was applied (values and scope, not the prose source); None when nothing."""
    if not applied:
        return None
    core = [{k: a[k] for k in ("checkpoint", "protocols", "tasks", "set")} for a in applied]
    return hashlib.sha256(json.dumps(core, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def merged_values(applied: list[dict]) -> dict:
    """All applied ``set`` values merged into one mapping (later overrides win)."""
    from ..registry import deep_merge

    out: dict = {}
    for a in applied:
        out = deep_merge(out, a["set"])
    return out


def applied_record(task, applied: list[dict]) -> dict:
    """What a result records under ``protocol``: the overrides, their hash, and the protocol that ran."""
    return {"checkpoint_overrides": applied, "overrides_hash": overrides_hash(applied),
            "effective": copy.deepcopy(task.protocol)}


def overridden_paths(applied: list[dict]) -> dict[str, tuple]:
    """``{"optimizer.lr": (checkpoint, replaced value)}`` for marking a printed protocol."""
    out = {}
    for a in applied:
        for path, old in a["replaced"].items():
            out[path] = (a["checkpoint"], old)
    return out
