"""Key-remapping rules as data: turn a checkpoint saved by some codebase into a backbone state dict.

A ``Layout`` is read from ``checkpoints.yaml`` and applied in this fixed order:

1. ``container``: where the weights sit in the file: the first of these keys present whose value holds tensors
   (``null`` means the top level), e.g. ``[state_dict]``, ``[model, module, null]``.
2. ``strip_ddp`` (default true): a leading ``module.`` (DataParallel / DistributedDataParallel) is removed.
3. ``drop``: regular expressions (``re.match``); matching keys are dropped (heads, projections, key encoders).
4. ``select``: key prefixes; keys outside all of them are dropped (audio networks, decoders, queues).
5. ``strip_prefix``: the first matching prefix is removed.
6. ``rename``: ``[pattern, replacement]`` pairs applied in order with ``re.sub`` (e.g. pyvrl's ``conv_s`` ->
   torchvision's ``0.0``).

``fresh`` lists backbone keys (regular expressions) that the reference recipe initialises fresh rather than from
the checkpoint (VideoMAE's ``fc_norm`` after a pre-training encoder); they are reported, never counted missing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from ..errors import CheckpointError


@dataclass(frozen=True)
class Layout:
    name: str
    description: str = ""
    architectures: tuple[str, ...] = ()
    container: tuple = (None,)
    strip_ddp: bool = True
    drop: tuple[str, ...] = ()
    select: tuple[str, ...] = ()
    strip_prefix: tuple[str, ...] = ()
    rename: tuple[tuple[str, str], ...] = ()
    fresh: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, name: str, d: Mapping) -> "Layout":
        known = {"description", "architectures", "container", "strip_ddp", "drop", "select", "strip_prefix",
                 "rename", "fresh"}
        unknown = set(d) - known
        if unknown:
            raise CheckpointError(f"layout {name!r}: unknown field(s) {sorted(unknown)} (known: {sorted(known)})")
        container = d.get("container", [None])
        if not isinstance(container, (list, tuple)):
            container = [container]
        rename = []
        for pair in d.get("rename", []) or []:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                raise CheckpointError(f"layout {name!r}: rename entries are [pattern, replacement] pairs, got {pair!r}")
            rename.append((str(pair[0]), str(pair[1])))
        layout = cls(
            name=name,
            description=str(d.get("description", "")).strip(),
            architectures=tuple(d.get("architectures", []) or []),
            container=tuple(container),
            strip_ddp=bool(d.get("strip_ddp", True)),
            drop=tuple(d.get("drop", []) or []),
            select=tuple(d.get("select", []) or []),
            strip_prefix=tuple(d.get("strip_prefix", []) or []),
            rename=tuple(rename),
            fresh=tuple(d.get("fresh", []) or []),
        )
        for pattern in (*layout.drop, *layout.fresh, *(p for p, _ in layout.rename)):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise CheckpointError(f"layout {name!r}: bad regular expression {pattern!r}: {exc}") from exc
        return layout

    def to_dict(self) -> dict:
        return {"description": self.description, "architectures": list(self.architectures),
                "container": list(self.container), "strip_ddp": self.strip_ddp, "drop": list(self.drop),
                "select": list(self.select), "strip_prefix": list(self.strip_prefix),
                "rename": [list(p) for p in self.rename], "fresh": list(self.fresh)}


@dataclass
class Remapped:
    """The outcome of applying a layout: the backbone-keyed state dict and what was left out."""

    layout: str
    container: str | None  # the key the weights were found under (None: top level)
    state_dict: dict[str, torch.Tensor]
    dropped: list[str] = field(default_factory=list)  # original keys the rules removed
    renamed: dict[str, str] = field(default_factory=dict)  # new key -> original key

    def dropped_summary(self, depth: int = 2) -> dict[str, int]:
        """Dropped keys counted by their first ``depth`` components, e.g. {'encoder_k.layer1': 30}."""
        return dict(Counter(".".join(k.split(".")[:depth]) for k in self.dropped))


def tensor_fraction(d: Mapping) -> float:
    if not d:
        return 0.0
    return sum(isinstance(v, torch.Tensor) for v in d.values()) / len(d)


def is_state_dict(obj) -> bool:
    """A mapping of string keys that mostly holds tensors (a few scalars such as ``n_averaged`` are tolerated)."""
    return isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(k, str) for k in obj) \
        and tensor_fraction(obj) >= 0.5


def find_container(obj, candidates) -> tuple[str | None, dict]:
    """The weights under the first candidate key that holds a state dict (``None``: the top level)."""
    tried = []
    for key in candidates:
        if key is None:
            if is_state_dict(obj):
                return None, dict(obj)
            tried.append("<top level>")
        elif isinstance(obj, Mapping) and key in obj and is_state_dict(obj[key]):
            return key, dict(obj[key])
        else:
            tried.append(repr(key))
    top = sorted(map(str, obj.keys()))[:12] if isinstance(obj, Mapping) else type(obj).__name__
    raise CheckpointError(f"no state dict under {', '.join(tried)}; the file's top level holds {top}")


def strip_ddp_prefix(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def apply_layout(layout: Layout, obj) -> Remapped:
    container, raw = find_container(obj, layout.container)
    drops = [re.compile(p) for p in layout.drop]
    renames = [(re.compile(p), r) for p, r in layout.rename]
    out: dict[str, torch.Tensor] = {}
    renamed: dict[str, str] = {}
    dropped: list[str] = []
    for original, value in raw.items():
        key = strip_ddp_prefix(original) if layout.strip_ddp else original
        if any(p.match(key) for p in drops) or (layout.select and not key.startswith(layout.select)):
            dropped.append(original)
            continue
        if not isinstance(value, torch.Tensor):  # e.g. a stray python scalar inside the state dict
            dropped.append(original)
            continue
        for prefix in layout.strip_prefix:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        for pattern, repl in renames:
            key = pattern.sub(repl, key)
        if key in out:
            raise CheckpointError(f"layout {layout.name!r} maps both {renamed[key]!r} and {original!r} to {key!r}")
        out[key] = value
        renamed[key] = original
    return Remapped(layout.name, container, out, dropped, renamed)


GENERIC = "generic:"  # name of the prefix-only layout: "generic:<prefix>"


def generic_layout(prefix: str, container: tuple, head: tuple[str, ...]) -> Layout:
    """The rules for an unknown file: keep what sits under ``prefix`` and drop the classification head."""
    return Layout(name=f"{GENERIC}{prefix}", description=f"backbone keys under prefix {prefix!r}", container=container,
                  select=(prefix,) if prefix else (), strip_prefix=(prefix,) if prefix else (), drop=head)
