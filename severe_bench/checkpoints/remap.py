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
7. ``concat``: ``[target, [part, ...]]``: tensors whose renamed keys end in the parts (same stem) are concatenated
   along the first axis into ``stem + target``, e.g. transformers' separate query/key/value weights into the fused
   ``attn.qkv.weight``. A stem with only some of the parts is left as it is (its keys are then reported).

``requires``: regular expressions (``re.match`` on keys after ``module.`` is stripped) that must each match some key
of the file for the layout to apply at all, e.g. a pre-training decoder; ``arch_kwargs``: backbone options that the
keys cannot show but the codebase fixes (transformers' LayerNorm eps); a registry entry or a model folder's
``config.json`` overrides them.

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
    concat: tuple[tuple[str, tuple[str, ...]], ...] = ()
    requires: tuple[str, ...] = ()
    arch_kwargs: tuple[tuple[str, object], ...] = ()  # a tuple of pairs keeps the layout hashable

    @classmethod
    def from_dict(cls, name: str, d: Mapping) -> "Layout":
        known = {"description", "architectures", "container", "strip_ddp", "drop", "select", "strip_prefix",
                 "rename", "fresh", "concat", "requires", "arch_kwargs"}
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
        concat = []
        for rule in d.get("concat", []) or []:
            if not (isinstance(rule, (list, tuple)) and len(rule) == 2 and isinstance(rule[1], (list, tuple))
                    and len(rule[1]) >= 2):
                raise CheckpointError(f"layout {name!r}: concat entries are [target, [part, part, ...]], got {rule!r}")
            concat.append((str(rule[0]), tuple(str(p) for p in rule[1])))
        kwargs = d.get("arch_kwargs", {}) or {}
        if not isinstance(kwargs, Mapping):
            raise CheckpointError(f"layout {name!r}: arch_kwargs must be a mapping, got {kwargs!r}")
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
            concat=tuple(concat),
            requires=tuple(d.get("requires", []) or []),
            arch_kwargs=tuple(sorted(kwargs.items())),
        )
        for pattern in (*layout.drop, *layout.fresh, *layout.requires, *(p for p, _ in layout.rename)):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise CheckpointError(f"layout {name!r}: bad regular expression {pattern!r}: {exc}") from exc
        return layout

    def to_dict(self) -> dict:
        return {"description": self.description, "architectures": list(self.architectures),
                "container": list(self.container), "strip_ddp": self.strip_ddp, "drop": list(self.drop),
                "select": list(self.select), "strip_prefix": list(self.strip_prefix),
                "rename": [list(p) for p in self.rename], "fresh": list(self.fresh),
                "concat": [[t, list(parts)] for t, parts in self.concat], "requires": list(self.requires),
                "arch_kwargs": dict(self.arch_kwargs)}


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
    if layout.requires:
        keys = [strip_ddp_prefix(k) if layout.strip_ddp else k for k in raw]
        absent = [p for p in layout.requires if not any(re.match(p, k) for k in keys)]
        if absent:
            raise CheckpointError(f"layout {layout.name!r} does not apply: no key matches {absent}")
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
    for target, parts in layout.concat:
        _concat(out, renamed, target, parts)
    return Remapped(layout.name, container, out, dropped, renamed)


def _concat(out: dict, renamed: dict, target: str, parts: tuple[str, ...]) -> None:
    """Fuse ``stem + part`` tensors (all parts present, same trailing shape) into ``stem + target``, in place."""
    stems = [k[: len(k) - len(parts[0])] for k in out if k.endswith(parts[0])]
    for stem in stems:
        keys = [stem + p for p in parts]
        if not all(k in out for k in keys):
            continue
        tensors = [out[k] for k in keys]
        if len({t.shape[1:] for t in tensors}) != 1:
            continue  # nothing sensible to fuse; the parts are reported as unexpected keys
        if stem + target in out:
            raise CheckpointError(f"both {renamed[stem + target]!r} and the parts {keys} give {stem + target!r}")
        out[stem + target] = torch.cat(tensors, dim=0)
        renamed[stem + target] = " + ".join(renamed[k] for k in keys)
        for k in keys:
            del out[k]
            del renamed[k]


GENERIC = "generic:"  # name of the prefix-only layout: "generic:<prefix>"


def generic_layout(prefix: str, container: tuple, head: tuple[str, ...]) -> Layout:
    """The rules for an unknown file: keep what sits under ``prefix`` and drop the classification head."""
    return Layout(name=f"{GENERIC}{prefix}", description=f"backbone keys under prefix {prefix!r}", container=container,
                  select=(prefix,) if prefix else (), strip_prefix=(prefix,) if prefix else (), drop=head)
