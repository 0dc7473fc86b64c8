"""Checkpoints: the registry (``checkpoints.yaml``), exact loading with key-remapping rules, safe unpickling,
layout detection, resumable sha256-checked downloads, and fvcore FLOP counts.

Entry points: ``load_checkpoint(spec, arch=None, allow_partial=False, trust=False) -> LoadedCheckpoint`` and
``flops_and_params(arch, input_shape) -> (gflops, params)``.
"""

from __future__ import annotations

from .flops import flops_and_params
from .loader import LoadedCheckpoint, load_checkpoint
from .registry import load_registry

__all__ = ["LoadedCheckpoint", "flops_and_params", "load_checkpoint", "load_registry"]
