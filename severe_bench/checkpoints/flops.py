"""FLOPs and parameter counts of a backbone at a given input, with fvcore.

fvcore counts one fused multiply-add as one FLOP (the convention of torchvision's ``_ops`` and of the papers)
and skips ``aten::scaled_dot_product_attention`` unless told how: the handle below counts its two matrix
products, B*H*N*S*(d + d_v). Without it a ViT-B at 16x224x224 reads 135 GFLOPs instead of 180.
Results are cached on disk (``<cache>/flops.json``) because a ViT-B forward on a CPU takes a while; the registry
also ships the counts at the protocol inputs.
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from pathlib import Path

import torch

from ..resources import cache_dir

CACHE_VERSION = 1
_lock = threading.Lock()
_memory: dict[str, tuple[float, int]] = {}


def sdpa_flop_handle(inputs, outputs) -> int:
    """fvcore handle for ``aten::scaled_dot_product_attention``: (q @ k^T) and (attn @ v) multiply-adds."""
    from ..fvcore_nn import fvcore_nn

    get_shape = fvcore_nn("fvcore.nn.jit_handles").get_shape

    q, k, v = (get_shape(i) for i in inputs[:3])
    *batch, n, d = q
    s = k[-2]
    dv = v[-1]
    b = 1
    for x in batch:
        b *= x
    return int(b * n * s * d + b * n * s * dv)


def normalise_shape(input_shape) -> tuple[int, int, int, int]:
    """(C, T, H, W) from (C, T, H, W) or (1, C, T, H, W)."""
    shape = tuple(int(x) for x in input_shape)
    if len(shape) == 5:
        if shape[0] != 1:
            raise ValueError(f"FLOPs are counted per clip: batch must be 1, got {shape}")
        shape = shape[1:]
    if len(shape) != 4:
        raise ValueError(f"input shape must be (C, T, H, W) or (1, C, T, H, W), got {input_shape}")
    return shape


def shape_key(shape) -> str:
    return "x".join(str(x) for x in normalise_shape(shape))


def _cache_key(arch: str, shape: tuple, kwargs: dict) -> str:
    import fvcore

    kw = ",".join(f"{k}={kwargs[k]}" for k in sorted(kwargs))
    return f"v{CACHE_VERSION}|fvcore-{getattr(fvcore, '__version__', '?')}|{arch}|{shape_key(shape)}|{kw}"


def _cache_file() -> Path:
    return cache_dir() / "flops.json"


def _read_cache() -> dict:
    try:
        return json.loads(_cache_file().read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, value: tuple[float, int]) -> None:
    path = _cache_file()
    data = _read_cache()
    data[key] = list(value)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _analysis(model: torch.nn.Module, shape: tuple, attention: bool = True):
    from ..fvcore_nn import fvcore_nn

    FlopCountAnalysis = fvcore_nn().FlopCountAnalysis

    x = torch.zeros((1,) + normalise_shape(shape))
    analysis = FlopCountAnalysis(model.eval(), x)
    if attention:
        analysis.set_op_handle("aten::scaled_dot_product_attention", sdpa_flop_handle)
    analysis.unsupported_ops_warnings(False)
    analysis.uncalled_modules_warnings(False)
    return analysis


def count_by_operator(model: torch.nn.Module, shape: tuple, attention: bool = True) -> dict[str, int]:
    """fvcore FLOPs per operator type (e.g. {'conv': ..., 'batch_norm': ...}) for one clip of ``shape``."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        return dict(_analysis(model, shape, attention).by_operator())


def count(model: torch.nn.Module, shape: tuple) -> tuple[float, int]:
    """(GFLOPs, parameters) of ``model`` for one clip of ``shape`` (C, T, H, W), counted now."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        total = _analysis(model, shape).total()
    params = sum(p.numel() for p in model.parameters())
    return round(total / 1e9, 4), int(params)


def arch_variant(arch: str, kwargs: dict) -> str:
    """Name of a backbone variant in the registry's ``flops:`` table, e.g. ``r2plus1d_18[layer4_temporal=dilated]``."""
    if not kwargs:
        return arch
    return f"{arch}[{','.join(f'{k}={kwargs[k]}' for k in sorted(kwargs))}]"


def _registry_value(arch: str, shape: tuple, kwargs: dict):
    """The count shipped in checkpoints.yaml for default-built backbones, if any."""
    variant = arch_variant(arch, kwargs)
    try:
        from .registry import load_registry

        row = load_registry().flops.get(variant, {}).get(shape_key(shape))
    except Exception:
        return None
    if row and "gflops" in row and "params" in row:
        return float(row["gflops"]), int(row["params"])
    return None


# options that change neither the counted FLOPs nor the parameters (the native ViT grid only matters through the
# position embedding, which is free of multiply-adds; normalisation eps neither)
_NEUTRAL = ("bn_eps", "drop_path", "img_size", "num_frames", "norm_eps", "fc_norm_eps")


def _relevant_kwargs(arch: str, arch_kwargs: dict) -> dict:
    """The options that differ from the backbone's defaults and change its counts (a stable cache key)."""
    from ..models import create_backbone

    kwargs = {k: v for k, v in arch_kwargs.items() if k not in _NEUTRAL}
    if not kwargs:
        return {}
    with torch.device("meta"):
        defaults = dict(getattr(create_backbone(arch), "arch_kwargs", {}))
    return {k: v for k, v in kwargs.items() if k not in defaults or defaults[k] != v}


def flops_and_params(arch: str, input_shape, use_cache: bool = True, **arch_kwargs) -> tuple[float, int]:
    """(GFLOPs, parameters) of backbone ``arch`` (no head) for one clip of ``input_shape``.

    ``input_shape`` is (C, T, H, W) or (1, C, T, H, W); ``arch_kwargs`` are ``create_backbone`` options that change
    the network (e.g. ``layer4_temporal="dilated"`` for TCLR). BatchNorm eps and drop path do not change counts.
    """
    from ..models import create_backbone

    kwargs = _relevant_kwargs(arch, arch_kwargs)
    shape = normalise_shape(input_shape)
    key = _cache_key(arch, shape, kwargs)
    if use_cache:
        with _lock:
            if key in _memory:
                return _memory[key]
        shipped = _registry_value(arch, shape, kwargs)
        if shipped is not None:
            _memory[key] = shipped
            return shipped
        cached = _read_cache().get(key)
        if cached:
            _memory[key] = (float(cached[0]), int(cached[1]))
            return _memory[key]
    value = count(create_backbone(arch, **kwargs), shape)
    with _lock:
        _memory[key] = value
        try:
            _write_cache(key, value)
        except OSError:  # a read-only cache only costs a recount next time
            pass
    return value
