"""Which codebase wrote a checkpoint (its key pattern) and which architecture it holds.

Every registry layout is tried on the file; the remapped keys name the architecture (``stem.0.weight`` of shape
45x3x1x7x7 is R(2+1)D, 64x3x3x7x7 is R3D, a 2D ``conv1.weight`` is an image ResNet-18/50, ``patch_embed.proj.weight`` with 384/768 channels is ViT-S/B) and its
options (TCLR's dilated layer4, learned position embeddings, a CLS token, layer scale). A candidate is *exact*
when the remapped keys and shapes equal the backbone's. If no registry layout fits, a generic rule looks for the
backbone's keys under any common prefix (``anything.stem.0.weight``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from ..errors import CheckpointError
from ..models import EMBED_DIM_TO_VIT, create_backbone
from .remap import (GENERIC, Layout, Remapped, apply_layout, find_container, generic_layout, is_state_dict,
                    strip_ddp_prefix)

# keys a backbone may lack in old files without changing what it computes (BatchNorm counters, PyTorch < 0.4.1)
OPTIONAL_KEY = re.compile(r"(^|\.)num_batches_tracked$")
ANCHORS = {"cnn": "stem.0.weight", "vit": "patch_embed.proj.weight"}
PYVRL_ANCHORS = ("stem.conv_s.weight", "stem.conv.weight")
SHAPE_NEUTRAL = ("bn_eps", "drop_path", "norm_eps", "fc_norm_eps")  # options that change no tensor shape


def infer_architecture(sd: dict) -> tuple[str, dict] | None:
    """(architecture, kwargs) from backbone-keyed weights, or None if they are no known backbone."""
    w = sd.get("patch_embed.proj.weight")
    if isinstance(w, torch.Tensor) and w.ndim == 5:
        arch = EMBED_DIM_TO_VIT.get(int(w.shape[0]))
        if arch is None or w.shape[-1] != w.shape[-2]:
            return None
        kw = {"tubelet_size": int(w.shape[2]), "patch_size": int(w.shape[3]),
              "pos_embed": "learned" if "pos_embed" in sd else "sincos",
              "pooling": "cls" if "cls_token" in sd else "mean",
              "qkv_bias": "blocks.0.attn.q_bias" in sd}
        if "blocks.0.gamma_1" in sd:
            kw["layer_scale"] = 0.1  # any positive value creates the parameters; the checkpoint sets them
        return arch, kw
    w = sd.get("stem.0.weight")
    if isinstance(w, torch.Tensor) and w.ndim == 5:
        if tuple(w.shape) == (45, 3, 1, 7, 7):
            l4 = sd.get("layer4.0.conv1.0.weight")
            dilated = isinstance(l4, torch.Tensor) and l4.ndim == 5 and tuple(l4.shape[2:]) == (3, 3, 3)
            return "r2plus1d_18", {"layer4_temporal": "dilated" if dilated else "stride"}
        if tuple(w.shape) == (64, 3, 3, 7, 7):
            return "r3d_18", {"layer4_temporal": "stride"}
    w = sd.get("conv1.weight")  # torchvision image ResNets: a 2D 7x7 stem, Bottleneck blocks have conv3
    if isinstance(w, torch.Tensor) and tuple(w.shape) == (64, 3, 7, 7):
        if "layer1.0.conv3.weight" in sd and "layer3.5.conv1.weight" in sd and "layer3.6.conv1.weight" not in sd:
            return "resnet50", {}
        if "layer1.0.conv3.weight" not in sd and "layer1.2.conv1.weight" not in sd:
            return "resnet18", {}
    return None


@lru_cache(maxsize=32)
def _expected(arch: str, kwargs_items: tuple) -> dict[str, tuple]:
    """Backbone key -> shape, from a model built on the meta device (no memory, no init cost)."""
    with torch.device("meta"):
        model = create_backbone(arch, **dict(kwargs_items))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def expected_shapes(arch: str, kwargs: dict) -> dict[str, tuple]:
    relevant = {k: v for k, v in kwargs.items() if k not in SHAPE_NEUTRAL}
    return _expected(arch, tuple(sorted(relevant.items())))


@dataclass
class Match:
    """A layout applied to a file and compared with a backbone."""

    remapped: Remapped
    architecture: str
    arch_kwargs: dict
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)  # "key: file (a, b) vs backbone (c, d)"
    fresh: list[str] = field(default_factory=list)
    optional_missing: list[str] = field(default_factory=list)
    resizable: list[str] = field(default_factory=list)  # keys whose shape differs but can be resampled (pos_embed)

    @property
    def layout(self) -> str:
        return self.remapped.layout

    @property
    def exact(self) -> bool:
        return not (self.missing or self.unexpected or self.shape_mismatch)

    @property
    def loaded(self) -> int:
        return len(self.remapped.state_dict) - len(self.unexpected) - len(self.shape_mismatch)

    def score(self) -> tuple:
        return (self.exact, self.loaded, -len(self.missing) - len(self.unexpected))


def compare(remapped: Remapped, arch: str, kwargs: dict, layout: Layout | None = None) -> Match:
    expected = expected_shapes(arch, kwargs)
    sd = remapped.state_dict
    fresh_res = [re.compile(p) for p in (layout.fresh if layout else ())]
    m = Match(remapped, arch, dict(kwargs))
    for key, shape in expected.items():
        if key in sd:
            got = tuple(sd[key].shape)
            if got != shape:
                if key == "pos_embed" and len(got) == 3 and got[-1] == shape[-1]:
                    m.resizable.append(key)
                else:
                    m.shape_mismatch.append(f"{key}: file {got} vs backbone {shape}")
        elif any(p.match(key) for p in fresh_res):
            m.fresh.append(key)
        elif OPTIONAL_KEY.search(key):
            m.optional_missing.append(key)
        else:
            m.missing.append(key)
    m.unexpected = [k for k in sd if k not in expected]
    return m


def match_layout(obj, layout: Layout, arch: str | None = None, arch_kwargs: dict | None = None) -> Match:
    """Apply ``layout`` to a loaded file and compare with ``arch`` (inferred from the keys when None)."""
    remapped = apply_layout(layout, obj)
    inferred = infer_architecture(remapped.state_dict)
    if inferred is not None and layout.architectures and inferred[0] not in layout.architectures:
        inferred = None  # e.g. ViT keys through the torchvision layout: not what this layout describes
    if arch is None:
        if inferred is None:
            if not layout.architectures:
                raise CheckpointError(f"layout {layout.name!r}: the remapped keys are no known backbone "
                                      f"(first keys: {list(remapped.state_dict)[:5]})")
            inferred = (layout.architectures[0], {})  # compare with the layout's usual backbone: all keys missing
        arch, kw = inferred
    else:
        kw = dict(inferred[1]) if inferred and inferred[0] == arch else {}
    kw.update(dict(layout.arch_kwargs))  # what the codebase fixes, then what the entry or config.json says
    kw.update(arch_kwargs or {})
    return compare(remapped, arch, kw, layout)


def _containers(obj) -> list:
    out: list = []
    if is_state_dict(obj):
        out.append(None)
    if isinstance(obj, dict):
        out += [k for k, v in obj.items() if is_state_dict(v)]
    return out


def _generic(prefix: str, container) -> Layout:
    head = (f"{re.escape(prefix)}fc\\.", f"{re.escape(prefix)}head\\.")
    return generic_layout(prefix, (container,), head)


def _generic_candidates(obj) -> list[Layout]:
    """Generic layouts: backbone keys under whatever prefix precedes a known anchor key."""
    out = []
    for c in _containers(obj):
        _, sd = find_container(obj, (c,))
        prefixes = set()
        for key in sd:
            k = strip_ddp_prefix(key)
            for anchor in ANCHORS.values():
                if k.endswith(anchor) and (k == anchor or k[: -len(anchor)].endswith(".")):
                    prefixes.add(k[: -len(anchor)])
        out += [_generic(p, c) for p in sorted(prefixes)]
    return out


def generic_for(obj, name: str) -> Layout:
    """The generic layout ``generic:<prefix>`` for this file (the first container holding that prefix)."""
    prefix = name[len(GENERIC):]
    for c in _containers(obj):
        _, sd = find_container(obj, (c,))
        if any(strip_ddp_prefix(k).startswith(prefix) for k in sd):
            return _generic(prefix, c)
    raise CheckpointError(f"no weights in this file start with {prefix!r}")


def detect(obj, layouts: dict[str, Layout], arch: str | None = None, arch_kwargs: dict | None = None) -> list[Match]:
    """All layouts that yield a known backbone from ``obj``, best first (exact matches, then most keys loaded).
    Registry layouts rank before the generic rule when equally good. ``arch_kwargs`` (e.g. from a model folder's
    config.json) are given to every candidate."""
    matches: list[tuple[tuple, int, Match]] = []
    candidates = list(layouts.values())
    generic = _generic_candidates(obj)
    for order, layout in enumerate(candidates + generic):
        if arch and layout.architectures and arch not in layout.architectures:
            continue
        try:
            m = match_layout(obj, layout, arch, arch_kwargs)
        except CheckpointError:
            continue
        if m.loaded <= 0:
            continue
        matches.append((m.score(), -order, m))
    matches.sort(key=lambda t: (t[0], t[1]), reverse=True)
    return [m for _, _, m in matches]


def describe_keys(obj, limit: int = 8) -> str:
    """A short account of what a file holds, for error messages when nothing matched."""
    if isinstance(obj, dict):
        parts = []
        for k, v in list(obj.items())[:limit]:
            if is_state_dict(v):
                keys = list(v)
                parts.append(f"{k!r}: {len(keys)} tensors, e.g. {keys[:3]}")
            elif isinstance(v, torch.Tensor):
                parts.append(f"{k!r}: tensor {tuple(v.shape)}")
            else:
                parts.append(f"{k!r}: {type(v).__name__}")
        return "; ".join(parts)
    return type(obj).__name__


def pyvrl_hint(obj) -> bool:
    """True when the file looks like pyvrl (CtP / Tubelet-Contrast) keys, for a clearer error message."""
    try:
        _, sd = find_container(obj, (None, "state_dict", "model"))
    except CheckpointError:
        return False
    return any(strip_ddp_prefix(k).endswith(PYVRL_ANCHORS) for k in sd)
