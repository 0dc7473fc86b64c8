"""``load_checkpoint``: a registry name, a local file, a URL, a Hugging Face model folder (``config.json`` sets
the architecture, see hf_config.py) or Hub id (hub.py) -> a backbone with exactly those weights.

The reference SEVERE code loads with ``strict=False`` and only prints the mismatch, so a wrong prefix silently
evaluates a random network. Here every backbone key must come from the file (or be declared fresh by the
layout), nothing from the file may be left unused except what the layout's rules drop, and shapes must agree;
otherwise ``CheckpointError`` lists the keys, unless ``allow_partial`` is given.
"""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from ..models import backbone_spec, create_backbone
from . import fetch as fetch_mod
from . import hf_config, hub
from .detect import Match, describe_keys, detect, generic_for, match_layout, pyvrl_hint
from .hashlock import check_against_lock, publisher_sha256_prefix, record_download, url_key
from .remap import GENERIC
from .registry import Entry, Registry, default_quirks, load_registry
from .safe_load import load_file, sha256_file

LIST_LIMIT = 20


@dataclass
class LoadedCheckpoint:
    backbone: nn.Module
    info: dict

    def __repr__(self) -> str:
        i = self.info
        return f"LoadedCheckpoint({i.get('name')!r}, {i.get('architecture')}, layout={i.get('layout')!r})"


def is_url(spec: str) -> bool:
    return spec.startswith(("http://", "https://"))


_SUFFIXES = (".tar", ".pth", ".pt", ".ckpt", ".bin", ".safetensors", ".pkl", ".gz", ".zip")


def file_label(path: Path) -> str:
    """A file's name without checkpoint suffixes: checkpoint_0199.pth.tar -> checkpoint_0199."""
    name = path.name
    while name.lower().endswith(_SUFFIXES):
        name = name[: name.rfind(".")]
    return name or path.name


def _from_hub(spec: str, download: bool) -> tuple[Path, Entry | None, dict | None]:
    repo, revision = hub.parse_hub_id(spec)
    try:
        weights = hub.model_weights(repo, revision, download=download)
    except CheckpointError as exc:
        if spec.startswith(hub.PREFIX):
            raise
        raise CheckpointError(f"{exc} ({spec!r} is no local file or folder either)") from None
    return weights, None, {"hub": repo, "revision": hub.snapshot_revision(weights) or revision}


def resolve(spec: str, registry: Registry, download: bool = True,
            refresh: bool = False) -> tuple[Path, Entry | None, dict | None]:
    """(local file, registry entry or None, source description) for a registry name, URL, path, model folder
    (its transformers weights file) or Hugging Face Hub id (``owner/name`` or ``hf:owner/name[@revision]``).

    A cached download that fails its known sha256 or is not a whole checkpoint is discarded and fetched again
    once; ``refresh`` fetches it again in any case. Files outside the cache (the user's own) are never deleted.
    """
    if spec in registry.entries and os.sep not in spec:
        entry = registry.entries[spec]
        if entry.source.hub:
            path = hub.model_weights(entry.source.hub, entry.source.revision, download=download)
            fetch_mod.verify_existing(path, entry.source.sha256, entry.source.sha256_prefix)
            return path, entry, {**entry.source.to_dict(), "revision": hub.snapshot_revision(path)
                                 or entry.source.revision}
        path = fetch_mod.find_local(entry)
        offline = not download or os.environ.get("SEVERE_OFFLINE")
        if path is not None and fetch_mod.in_cache(path) and not offline:
            path = fetch_mod.fetch(entry, registry, force=refresh)  # re-fetches a bad cached copy once
            check_against_lock(entry.name, path, sha256_file(path))
        elif path is None:
            if offline:
                raise CheckpointError(_not_cached_message(entry, registry))
            path = fetch_mod.fetch(entry, registry, force=refresh)
        else:
            fetch_mod.verify_existing(path, entry.source.sha256, entry.source.sha256_prefix)
            check_against_lock(entry.name, path, sha256_file(path))
        return path, entry, entry.source.to_dict()
    if is_url(spec):
        entry = next((e for e in registry.entries.values() if e.source.url == spec), None)
        if entry is not None:
            return resolve(entry.name, registry, download, refresh)
        dest = fetch_mod.url_cache_path(spec)
        if dest.exists():
            problem = "--refresh asked for a new copy" if refresh else fetch_mod.cached_problem(dest)
            if problem:
                fetch_mod.discard_cached(dest, problem)
        if not dest.exists():
            if not download or os.environ.get("SEVERE_OFFLINE"):
                raise CheckpointError(f"{spec} is not downloaded yet and downloads are off (SEVERE_OFFLINE)")
            fetch_mod.download(spec, dest, sha256_prefix=publisher_sha256_prefix(spec),
                                check_file=True)
            record_download(url_key(spec), dest, sha256_file(dest), spec)
        return dest, None, {"url": spec}
    if spec.startswith(hub.PREFIX) and hub.parse_hub_id(spec):
        return _from_hub(spec, download)
    path = Path(spec).expanduser()
    if not path.exists():
        if hub.parse_hub_id(spec) and not spec.lower().endswith(_SUFFIXES):  # runs/x.pth: a missing file, no Hub id
            return _from_hub(spec, download)
        close = [n for n in registry.entries if n.startswith(spec[:3])] if spec else []
        hint = f"; registry names like {close[:4]}" if close else "; `severe checkpoints list` shows registry names"
        raise CheckpointError(f"checkpoint {spec!r} is neither a registry name, a URL nor an existing file (or model "
                              f"folder, or Hugging Face model id owner/name){hint}")
    if path.is_dir():
        return hf_config.weights_in_folder(path), None, None
    return path, None, None


def _not_cached_message(entry: Entry, registry: Registry) -> str:
    """Which file is missing, where it goes and where to get it (downloads are off or not allowed)."""
    dest = fetch_mod.entry_path(entry)
    url = entry.source.url or (registry.archives[entry.source.archive].url if entry.source.archive else None)
    where = f" from {url}" if url else ""
    fetch_cmd = shlex.join(["severe", "checkpoints", "fetch", entry.name])
    return (f"checkpoint {entry.name!r} ({fetch_mod.entry_file_name(entry)}) is not in the cache ({dest}) and "
            f"downloads are off; run `{fetch_cmd}` where the network is reachable, or "
            f"download it{where} to {dest} (or into a folder named in SEVERE_CHECKPOINTS_PATH), or give the "
            "file's path")


def _quirks_for(match: Match, candidates: list[Match], registry: Registry) -> tuple[dict, list[str]]:
    """Quirks of the registry entries written by the detected codebase, when they agree; defaults otherwise."""
    layouts = {m.layout for m in candidates if m.exact} or {match.layout}
    entries = [e for e in registry.entries.values() if e.layout in layouts]
    if entries:
        quirks = [e.quirks() for e in entries]
        if all(q == quirks[0] for q in quirks):
            return quirks[0], [e.name for e in entries]
    return default_quirks(registry), []


def _format_keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:LIST_LIMIT])
    more = f" ... and {len(keys) - LIST_LIMIT} more" if len(keys) > LIST_LIMIT else ""
    return f"{len(keys)}: {shown}{more}"


def mismatch_report(match: Match) -> str:
    lines = []
    if match.missing:
        lines.append(f"missing backbone keys {_format_keys(match.missing)}")
    if match.unexpected:
        lines.append(f"unexpected keys (in the file after layout {match.layout!r}, not in the backbone) "
                     f"{_format_keys(match.unexpected)}")
    if match.shape_mismatch:
        lines.append(f"shape mismatches {_format_keys(match.shape_mismatch)}")
    return "\n  ".join(lines)


def _choose(obj, registry: Registry, entry: Entry | None, arch: str | None, layout: str | None,
            label: str, config_kwargs: dict | None = None) -> tuple[Match, list[Match]]:
    if entry is not None:
        if arch and arch != entry.architecture:
            raise CheckpointError(f"{label} is registered as {entry.architecture}, not {arch}")
        m = match_layout(obj, registry.layouts[entry.layout], entry.architecture,
                         {**(config_kwargs or {}), **entry.arch_kwargs})
        return m, [m]
    if layout is not None:
        if layout.startswith(GENERIC):
            m = match_layout(obj, generic_for(obj, layout), arch, config_kwargs)
            return m, [m]
        if layout not in registry.layouts:
            raise CheckpointError(f"unknown layout {layout!r}; known: {', '.join(registry.layouts)} or "
                                  f"{GENERIC}<prefix>")
        m = match_layout(obj, registry.layouts[layout], arch, config_kwargs)
        return m, [m]
    found = detect(obj, registry.layouts, arch, config_kwargs)
    if not found:
        extra = " It looks like pyvrl (CtP / Tubelet-Contrast) keys of an unsupported depth." if pyvrl_hint(obj) else ""
        raise CheckpointError(f"{label}: no known layout yields an R(2+1)D-18, R3D-18 or VideoMAE ViT-S/B backbone "
                              f"from this file.{extra} It holds: {describe_keys(obj)}")
    best = found[0]
    if not best.exact:
        return best, [best]
    generic = best.layout.startswith(GENERIC)
    same = [m for m in found if m.exact and m.layout.startswith(GENERIC) == generic]
    if generic and len({m.layout for m in same}) > 1:
        prefixes = ", ".join(repr(m.layout) for m in same)
        raise CheckpointError(f"{label}: the file holds {len(same)} complete backbones ({prefixes}) and no registry "
                              f"layout says which one is meant; choose with layout (--layout) {same[0].layout!r} or "
                              "another of them")
    return best, same


def infer_pos_grid(n_tokens: int, model_grid: tuple[int, int, int]) -> tuple[int, int, int] | None:
    """The (T, H, W) token grid of a learned position embedding with ``n_tokens`` entries: square frames, the
    model's temporal size when it fits (as VideoMAE assumes), else the largest temporal size that fits."""
    t_options = [model_grid[0]] + [t for t in (16, 8, 4, 2, 1) if t != model_grid[0]]
    for t in t_options:
        if n_tokens % t:
            continue
        side = math.isqrt(n_tokens // t)
        if side * side * t == n_tokens:
            return (t, side, side)
    return None


def _resize_pos_embed(sd: dict, model: nn.Module, match: Match) -> str | None:
    from ..models.vit import resize_pos_embed

    if "pos_embed" not in match.resizable:
        return None
    pos = sd["pos_embed"]
    extra = getattr(model, "extra_tokens", 0)
    old = infer_pos_grid(pos.shape[1] - extra, model.grid)
    if old is None:
        match.shape_mismatch.append(f"pos_embed: file {tuple(pos.shape)} vs backbone "
                                    f"{tuple(model.pos_embed.shape)} (no (T, H, W) grid fits)")
        match.resizable.remove("pos_embed")
        return None
    sd["pos_embed"] = resize_pos_embed(pos, old, model.grid, extra)
    return f"{old} -> {model.grid}"


def _build_for(arch: str, kwargs: dict, loaded: set[str], model: nn.Module) -> nn.Module:
    """The backbone to load into, from its meta-device ``model``. When the file covers every tensor except
    BatchNorm counters and fresh LayerNorms, skip the random initialisation (slow for a ViT-B) and allocate
    uninitialised memory instead; otherwise build normally, so what the file lacks keeps its proper init."""
    names = dict(model.named_modules())
    rest = [k for k in model.state_dict() if k not in loaded]
    owners = {k: names[k.rpartition(".")[0]] for k in rest}
    if not all(k.endswith("num_batches_tracked") or isinstance(owners[k], nn.LayerNorm) for k in rest):
        return create_backbone(arch, **kwargs)
    model = model.to_empty(device="cpu")
    if hasattr(model, "reset_non_persistent_buffers"):
        model.reset_non_persistent_buffers()
    elif any(m._non_persistent_buffers_set for m in model.modules()):
        return create_backbone(arch, **kwargs)
    with torch.no_grad():
        for k, owner in owners.items():
            if isinstance(owner, nn.LayerNorm):
                owner.reset_parameters()
            else:
                model.get_buffer(k).zero_()
    return model


def load_checkpoint(spec: str, arch: str | None = None, allow_partial: bool = False, trust: bool = False,
                    layout: str | None = None, registry: Registry | None = None, download: bool = True,
                    count_flops: bool = True, refresh: bool = False) -> LoadedCheckpoint:
    """Load ``spec`` ("scratch", a registry name, a local path or model folder, a URL or a Hugging Face Hub id)
    into its backbone.

    ``arch`` constrains (or, for "scratch", chooses) the architecture; ``layout`` forces a registry layout
    instead of detecting one; ``trust`` loads files that pickle non-allow-listed objects (may run code);
    ``refresh`` downloads a registry or URL checkpoint again even when a copy is cached.
    """
    registry = registry or load_registry()
    if spec == "scratch":
        return _scratch(arch or "r2plus1d_18", registry, count_flops)
    path, entry, source = resolve(spec, registry, download=download, refresh=refresh)
    folder = _folder_config(path, entry, arch)  # config.json beside transformers weights, checked before reading them
    if folder is not None:
        arch = folder.architecture
    sha = sha256_file(path)
    if entry is None:
        entry = registry.by_sha256(sha)
        if entry is not None and source is None:
            source = entry.source.to_dict()
    label = entry.name if entry else str(path)
    obj = load_file(path, trust=trust)
    match, candidates = _choose(obj, registry, entry, arch, layout, label,
                                folder.arch_kwargs if folder is not None else None)
    if entry is not None:
        quirks, quirks_from = entry.quirks(), [entry.name]
    else:
        quirks, quirks_from = _quirks_for(match, candidates, registry)

    kwargs = dict(match.arch_kwargs)
    if backbone_spec(match.architecture).family == "cnn":
        kwargs["bn_eps"] = quirks["bn_eps"]
    sd = {k: v for k, v in match.remapped.state_dict.items() if k not in set(match.unexpected)}
    with torch.device("meta"):  # shapes first: nothing is allocated or initialised before the checks pass
        skeleton = create_backbone(match.architecture, **kwargs)
    resized = _resize_pos_embed(sd, skeleton, match)
    bad = {s.split(":")[0] for s in match.shape_mismatch}
    sd = {k: v for k, v in sd.items() if k not in bad}
    if not match.exact and not allow_partial:
        hint = ""
        if entry is None and layout is None and len(candidates) == 1:
            hint = f"\n  best layout found: {match.layout!r} ({match.architecture}, {match.loaded} tensors match)"
        elif entry is not None or layout is not None:
            others = [m for m in detect(obj, registry.layouts) if m.exact]
            if others:
                hint = f"\n  the file matches layout {others[0].layout!r} ({others[0].architecture}) exactly"
        raise CheckpointError(f"{label}: the backbone cannot be loaded exactly.\n  {mismatch_report(match)}{hint}\n"
                              "  (--allow-partial loads what matches and leaves the rest randomly initialised)")
    model = _build_for(match.architecture, kwargs, set(sd), skeleton)
    result = model.load_state_dict(sd, strict=False)
    leftover = [k for k in result.unexpected_keys]
    if leftover:  # cannot happen when compare() is right; never ignore it silently
        raise CheckpointError(f"{label}: internal key mismatch after remapping: {leftover[:LIST_LIMIT]}")
    model.eval()

    own_label = _label(path, source)
    info = {
        "name": entry.name if entry else own_label,
        "label": entry.label if entry else own_label,
        "path": str(path),
        "config": str(folder.path) if folder is not None else None,  # a model folder's config.json
        "model_class": folder.model_class if folder is not None else None,
        "sha256": sha,
        "size_bytes": path.stat().st_size,
        "source": source,
        "architecture": match.architecture,
        "arch_kwargs": dict(getattr(model, "arch_kwargs", kwargs)),
        "layout": match.layout,
        "layout_candidates": [m.layout for m in candidates if m.exact] or [match.layout],
        "container": match.remapped.container,
        "loaded": len(sd),
        "expected": len(model.state_dict()),
        # a wrong-shaped tensor is left at its random init exactly like an absent one: it is missing too
        "missing": list(match.missing) + sorted(bad - set(match.missing)),
        "unexpected": list(match.unexpected),
        "shape_mismatch": list(match.shape_mismatch),
        "initialised_fresh": list(match.fresh),
        "optional_missing": list(match.optional_missing),
        "dropped": match.remapped.dropped_summary(),
        "dropped_count": len(match.remapped.dropped),
        "pos_embed_resized": resized,
        "nonfinite": nonfinite_tensors(model, set(sd)),
        "quirks_from": quirks_from,  # registry entries whose quirks apply; [] = the registry defaults
        **quirks,
        "citation": entry.citation if entry else None,
    }
    info.update(_cost(match.architecture, info["arch_kwargs"], count_flops, model))
    return LoadedCheckpoint(model, info)


def _folder_config(path: Path, entry: Entry | None, arch: str | None) -> hf_config.FolderConfig | None:
    """What the config.json of a transformers model folder says, checked against the registry and ``arch``."""
    cfg_path = hf_config.config_beside(path)
    if cfg_path is None:
        return None
    folder = hf_config.read_config(cfg_path)
    expected = entry.architecture if entry is not None else arch
    if expected and expected != folder.architecture:
        who = f"{entry.name} is registered as" if entry is not None else "--arch asks for"
        raise CheckpointError(f"{cfg_path}: the config describes {folder.architecture} "
                              f"(hidden_size {folder.raw.get('hidden_size')}) but {who} {expected}")
    return folder


def _label(path: Path, source: dict | None) -> str:
    """A short name for a file: the Hub id, the model folder's name, or the file name without suffixes."""
    if source and source.get("hub"):
        return source["hub"]
    if path.name in hf_config.WEIGHT_FILES:
        return path.parent.name
    return file_label(path)


def nonfinite_tensors(model: nn.Module, names: set[str] | None = None) -> list[str]:
    """Names of the floating-point tensors (among ``names``, default all) holding NaN or infinity."""
    return [k for k, v in model.state_dict().items()
            if (names is None or k in names) and v.is_floating_point() and not bool(torch.isfinite(v).all())]


def _cost(arch: str, arch_kwargs: dict, count_flops: bool, model: nn.Module) -> dict:
    shape = tuple(backbone_spec(arch).protocol_inputs[0])
    out = {"params": sum(p.numel() for p in model.parameters()), "gflops": None,
           "gflops_input": "x".join(map(str, shape))}
    if count_flops:
        from .flops import flops_and_params

        try:
            out["gflops"], out["params"] = flops_and_params(arch, shape, **arch_kwargs)
        except Exception as exc:  # FLOP counting is informative; it never blocks a load
            out["gflops_error"] = f"{type(exc).__name__}: {exc}"
    return out


def _scratch(arch: str, registry: Registry, count_flops: bool) -> LoadedCheckpoint:
    quirks = default_quirks(registry)
    kwargs = {"bn_eps": quirks["bn_eps"]} if backbone_spec(arch).family == "cnn" else {}
    model = create_backbone(arch, **kwargs).eval()
    info = {"name": "scratch", "label": "Scratch", "path": None, "config": None, "model_class": None,
            "sha256": None, "size_bytes": None,
            "source": None, "architecture": arch, "arch_kwargs": dict(getattr(model, "arch_kwargs", kwargs)),
            "layout": "scratch", "layout_candidates": ["scratch"], "container": None, "loaded": 0,
            "expected": len(model.state_dict()), "missing": [], "unexpected": [], "shape_mismatch": [],
            "initialised_fresh": [], "optional_missing": [], "dropped": {}, "dropped_count": 0,
            "pos_embed_resized": None, "nonfinite": [], "quirks_from": [], **quirks, "citation": None}
    info["overrides"] = [dict(o) for o in registry.scratch_overrides]  # its own reference schedule (§3.4)
    info.update(_cost(arch, info["arch_kwargs"], count_flops, model))
    return LoadedCheckpoint(model, info)
