"""Data-parallel ranks under ``torchrun`` (DDP): process group set-up from the environment, and the few
collectives the engine needs (sums, merges and gathers of per-rank results). With one process every
function is the identity, so the engine has a single code path. No ``nn.DataParallel``."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def launched() -> bool:
    """True when started by torchrun (or another launcher that sets WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def setup(device: torch.device) -> torch.device:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on CPU); returns this rank's device."""
    if not launched() or active():
        return device
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several ranks (gradients averaged over ranks)."""
    if world_size() == 1:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def barrier() -> None:
    if active():
        dist.barrier()


def sum_tensor(t: torch.Tensor) -> torch.Tensor:
    if not active():
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t


_CPU_GROUP: tuple | None = None  # (default group it was made for, gloo group)


def _cpu_group():
    """A gloo group over all ranks for host-side values (created once, by every rank at the same call): on an
    NCCL default group a CPU integer would go through the GPU, with a host sync each time."""
    global _CPU_GROUP
    if dist.get_backend() == "gloo":
        return None  # the default group already works on CPU tensors
    world = dist.group.WORLD
    if _CPU_GROUP is None or _CPU_GROUP[0] is not world:
        _CPU_GROUP = (world, dist.new_group(backend="gloo"))
    return _CPU_GROUP[1]


def min_int(value: int) -> int:
    """The smallest of every rank's ``value``, agreed on the host (no CUDA sync). One process: ``value``, and
    no collective is called."""
    if world_size() == 1:
        return int(value)
    t = torch.tensor([int(value)], dtype=torch.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MIN, group=_cpu_group())
    return int(t.item())


def any_true(flag: torch.Tensor) -> bool:
    return bool(sum_tensor(flag.to(torch.float32).reshape(())) > 0)


def gather_objects(obj) -> list:
    """Every rank's ``obj`` in rank order (the same list on every rank)."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def merge_dicts(d: dict) -> dict:
    merged: dict = {}
    for part in gather_objects(d):
        for k, v in part.items():
            merged.setdefault(k, v)
    return merged


def shutdown() -> None:
    global _CPU_GROUP
    if active():
        dist.destroy_process_group()
    _CPU_GROUP = None
