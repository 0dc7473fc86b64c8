"""The checkpoint registry (``checkpoints.yaml``): known checkpoints, their layouts, sources and quirks."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..errors import CheckpointError
from ..resources import resource_path
from .overrides import parse_overrides
from .remap import Layout

SCHEMA = "severe-bench/checkpoints/v1"
CHANNEL_ORDERS = ("RGB", "BGR")


@dataclass(frozen=True)
class Archive:
    name: str
    url: str
    file: str
    format: str = "zip"
    sha256: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Source:
    url: str | None = None  # direct download of the file itself
    archive: str | None = None  # or: a member of an archive (``archives:`` section)
    member: str | None = None
    file: str | None = None  # file name in the cache
    sha256: str | None = None
    sha256_prefix: str | None = None  # torchvision-style hash prefix in the file name, when the full hash is unknown
    homepage: str | None = None
    hub: str | None = None  # or: a Hugging Face Hub model id (config.json + weights, see checkpoints/hub.py)
    revision: str | None = None  # Hub branch, tag or commit (default: main)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Entry:
    name: str
    label: str
    method: str
    architecture: str
    layout: str
    source: Source
    citation: str
    arch_kwargs: dict = field(default_factory=dict)
    normalisation: dict = field(default_factory=dict)
    bn_eps: float = 1e-5
    overrides: list = field(default_factory=list)  # scoped protocol overrides (checkpoints/overrides.py)
    pretraining: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    notes: str = ""

    @property
    def backbone_kwargs(self) -> dict:
        """Arguments for ``create_backbone(self.architecture, **...)`` (BatchNorm eps only exists on CNNs)."""
        kw = dict(self.arch_kwargs)
        if not self.architecture.startswith("vit"):
            kw["bn_eps"] = self.bn_eps
        return kw

    def quirks(self) -> dict:
        return {"normalisation": copy.deepcopy(self.normalisation), "bn_eps": self.bn_eps,
                "overrides": copy.deepcopy(self.overrides)}


@dataclass(frozen=True)
class Registry:
    path: Path
    defaults: dict
    layouts: dict[str, Layout]
    entries: dict[str, Entry]
    archives: dict[str, Archive]
    flops: dict  # precomputed fvcore counts: {arch: {"CxTxHxW": {"gflops": g, "params": p}}} (default kwargs)
    scratch_overrides: list = field(default_factory=list)  # the "no pre-training" baseline's own values

    def get(self, name: str) -> Entry:
        if name not in self.entries:
            raise CheckpointError(f"unknown checkpoint {name!r}; `severe checkpoints list` shows the "
                                  f"{len(self.entries)} known ones")
        return self.entries[name]

    def by_sha256(self, sha256: str) -> Entry | None:
        for e in self.entries.values():
            if e.source.sha256 and e.source.sha256.lower() == sha256.lower():
                return e
        return None


def _normalisation(d: dict, where: str) -> dict:
    mean, std = d.get("mean"), d.get("std")
    order = d.get("channel_order", "RGB")
    if (mean is None) != (std is None):
        raise CheckpointError(f"{where}: normalisation needs both mean and std, or neither (no normalisation)")
    for v in (mean, std):
        if v is not None and (not isinstance(v, list) or len(v) != 3):
            raise CheckpointError(f"{where}: normalisation mean/std must be three numbers, got {v!r}")
    if order not in CHANNEL_ORDERS:
        raise CheckpointError(f"{where}: channel_order must be one of {CHANNEL_ORDERS}, got {order!r}")
    return {"mean": None if mean is None else [float(x) for x in mean],
            "std": None if std is None else [float(x) for x in std], "channel_order": order}


def parse_registry(data: dict, path: Path) -> Registry:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise CheckpointError(f"{path}: not a checkpoint registry (expected schema: {SCHEMA})")
    from ..models import BACKBONES

    defaults = data.get("defaults", {}) or {}
    layouts = {name: Layout.from_dict(name, d or {}) for name, d in (data.get("layouts") or {}).items()}
    archives = {}
    for name, d in (data.get("archives") or {}).items():
        try:
            archives[name] = Archive(name=name, **d)
        except TypeError as exc:
            raise CheckpointError(f"{path}: archive {name!r}: {exc}") from exc
    entries = {}
    allowed = {"label", "method", "architecture", "arch_kwargs", "layout", "source", "citation", "normalisation",
               "bn_eps", "overrides", "pretraining", "meta", "notes"}
    for name, d in (data.get("checkpoints") or {}).items():
        where = f"{path}: checkpoint {name!r}"
        unknown = set(d) - allowed
        if "finetune_overrides" in unknown:
            raise CheckpointError(f"{where}: 'finetune_overrides' is replaced by scoped 'overrides:' (a list of "
                                  "{protocols/tasks, set, source}; see docs/PROTOCOL.md §3.3)")
        if unknown:
            raise CheckpointError(f"{where}: unknown field(s) {sorted(unknown)}")
        for req in ("architecture", "layout", "source", "citation"):
            if req not in d:
                raise CheckpointError(f"{where}: missing field {req!r}")
        if d["architecture"] not in BACKBONES:
            raise CheckpointError(f"{where}: unknown architecture {d['architecture']!r}")
        if d["layout"] not in layouts:
            raise CheckpointError(f"{where}: unknown layout {d['layout']!r}")
        try:
            source = Source(**d["source"])
        except TypeError as exc:
            raise CheckpointError(f"{where}: source: {exc}") from exc
        if not (source.url or source.archive or source.hub):
            raise CheckpointError(f"{where}: source needs a url, an archive or a hub model id")
        if source.archive and (source.archive not in archives or not source.member):
            raise CheckpointError(f"{where}: source archive {source.archive!r} unknown or member missing")
        norm = _normalisation({**defaults.get("normalisation", {}), **(d.get("normalisation") or {})}, where)
        entries[name] = Entry(
            name=name, label=d.get("label", name), method=d.get("method", d.get("label", name)),
            architecture=d["architecture"], layout=d["layout"], source=source, citation=str(d["citation"]).strip(),
            arch_kwargs=dict(d.get("arch_kwargs") or {}), normalisation=norm,
            bn_eps=float(d.get("bn_eps", defaults.get("bn_eps", 1e-5))),
            overrides=parse_overrides(d.get("overrides"), where),
            pretraining=dict(d.get("pretraining") or {}), meta=dict(d.get("meta") or {}),
            notes=str(d.get("notes", "")).strip(),
        )
    if "finetune_overrides" in defaults:
        raise CheckpointError(f"{path}: defaults.finetune_overrides is gone: overrides are scoped per checkpoint")
    scratch = data.get("scratch") or {}
    if set(scratch) - {"overrides", "notes"}:
        raise CheckpointError(f"{path}: scratch: unknown field(s) {sorted(set(scratch) - {'overrides', 'notes'})}")
    return Registry(path=path, defaults=defaults, layouts=layouts, entries=entries, archives=archives,
                    flops=dict(data.get("flops") or {}),
                    scratch_overrides=parse_overrides(scratch.get("overrides"), f"{path}: scratch"))


@lru_cache(maxsize=4)
def _load(path: str, mtime: float) -> Registry:
    with open(path) as f:
        data = yaml.safe_load(f)
    return parse_registry(data, Path(path))


def load_registry(path: str | Path | None = None) -> Registry:
    """The registry at ``path`` (default: the bundled ``checkpoints.yaml``; ``SEVERE_HOME`` overrides)."""
    p = Path(path) if path else resource_path("checkpoints.yaml")
    return _load(str(p), p.stat().st_mtime)


def default_quirks(registry: Registry) -> dict[str, Any]:
    d = registry.defaults
    return {"normalisation": _normalisation(d.get("normalisation", {}), "defaults"),
            "bn_eps": float(d.get("bn_eps", 1e-5)), "overrides": []}
