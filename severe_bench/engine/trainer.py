"""The training loop the protocols share: passes, loader, precision, progress, resume, (distributed) ranks.

A protocol module (``finetune``, ``counting``) builds its model, optimiser and dataset, and hands ``fit`` a
``train_batch(batch, pass, step) -> (loss sum tensor, optimiser steps)`` function; everything that is the same
for every protocol lives here:

* **Precision** (``Precision``): bf16 autocast on CUDA (``--precision``), TF32 for what stays fp32,
  cudnn.benchmark, channels_last_3d for the CNN, optional ``torch.compile``; recorded in the result.
* **Loader** (``make_loader``): one DataLoader for the whole run (persistent workers, prefetch, pinned memory);
  the sampler hands out ``(pass, index)`` keys so the workers know the pass without being rebuilt.
* **Determinism**: the order of a pass depends only on (seed, pass); every random draw of a sample only on
  (seed, pass, sample index) (``sample_seed``), so ``--workers 0`` and ``--workers 2`` train the same model.
* **No host sync per step**: losses are summed on the device and read once per pass (and, on CUDA, every
  ``FINITE_CHECK_EVERY`` steps to stop at a non-finite loss).
* **Progress** (``Progress``): a tqdm bar on a terminal, else a log line every ``every_s`` seconds with
  clips/s, the pass and the ETA.
* **Resume**: the state is saved after every pass (rank 0 only) and a rerun continues from it.
* **Ranks**: under ``torchrun`` each rank trains on its share of every pass (DDP); see ``distributed.py``. A
  step is taken by all ranks or none (a rank whose batch failed to decode would leave the others waiting).
"""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..errors import ConfigError, SevereError
from . import distributed
from .state import loader_kwargs, resume_state, save_state, saved_history

PRECISIONS = ("auto", "bf16", "fp32")
FINITE_CHECK_EVERY = 50   # CUDA steps between reads of the non-finite flag (each read is a host sync)
LOG_EVERY_S = 30.0        # seconds between progress lines when stdout is not a terminal


def sample_seed(seed: int, pass_index: int, sample_index: int, stream: int = 0) -> int:
    """A 63-bit seed for one sample's random draws, from (seed, pass, index) only."""
    return int(np.random.SeedSequence([int(seed), int(pass_index), int(sample_index), int(stream)])
               .generate_state(2, dtype=np.uint32).astype(np.uint64) @ np.array([1, 2**31], dtype=np.uint64))


def default_workers() -> int:
    """Decoding processes per training process: the cores this process may use, shared by the local ranks."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // max(local, 1))


class Precision:
    """How the step runs on ``device``. ``name``: auto (bf16 autocast on a CUDA device that supports it,
    fp32 elsewhere), bf16, or fp32. bf16 needs no loss scaling."""

    def __init__(self, device, name: str = "auto", compile: bool = False, channels_last: bool = False):
        if name not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
        self.device = torch.device(device)
        cuda = self.device.type == "cuda"
        if name == "auto":
            name = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
        self.name, self.compile = name, bool(compile)
        self.channels_last = bool(channels_last) and cuda  # a CPU gains nothing from the 3-D layout
        self.tf32 = self.cudnn_benchmark = cuda
        if cuda:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True

    def autocast(self):
        if self.name == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move ``model`` to the device in its layout (in place); returns it."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last_3d)
        return model

    def compiled(self, model: nn.Module) -> nn.Module:
        """The module to call for forward passes (the original keeps the state-dict keys)."""
        return torch.compile(model) if self.compile else model

    def input(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 5:
            return x.contiguous(memory_format=torch.channels_last_3d)
        return x

    def record(self) -> dict:
        return {"precision": self.name, "channels_last_3d": self.channels_last, "tf32": self.tf32,
                "cudnn_benchmark": self.cudnn_benchmark, "compile": self.compile}


def optimise(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One optimiser step on ``loss`` (bf16 autocast needs no gradient scaler)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class PassSampler(Sampler):
    """The items of one pass as ``(pass, index)`` keys, in an order drawn from (seed, pass) only. Under DDP
    each rank takes every ``world``-th item of the order, padded to a multiple of ``world`` (as
    ``DistributedSampler``); with ``shuffle=False`` the order is the dataset's."""

    def __init__(self, num_items: int, seed: int, shuffle: bool = True, rank: int = 0, world: int = 1):
        self.n, self.seed, self.shuffle, self.rank, self.world = int(num_items), int(seed), shuffle, rank, world
        self.pass_index = 0

    def set_pass(self, pass_index: int) -> None:
        self.pass_index = int(pass_index)

    def __len__(self):
        return math.ceil(self.n / self.world)

    def order(self) -> np.ndarray:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.pass_index, 0x0DE5]).permutation(self.n)
        else:
            order = np.arange(self.n)
        total = len(self) * self.world
        if total > self.n:
            order = np.concatenate([order, order[: total - self.n]])
        return order[self.rank::self.world]

    def __iter__(self):
        p = self.pass_index
        return iter([(p, int(i)) for i in self.order()])


def make_loader(dataset, batch_size: int, sampler, collate, workers: int, device, persistent: bool = True,
                seed: int = 0) -> DataLoader:
    """One DataLoader for the whole run: workers stay alive across passes and prefetch ahead."""
    kw = loader_kwargs(workers, device)
    if workers > 0:
        kw.update(persistent_workers=persistent, prefetch_factor=2)  # batches in flight per worker (shared memory)
    # an explicit generator: the loader's worker seeds never consume the global torch RNG (dropout's)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate,
                      generator=torch.Generator().manual_seed(int(seed)), **kw)


class Progress:
    """A tqdm bar on a terminal; otherwise ``log`` gets a line every ``every_s`` seconds with clips/s, the
    pass, and the ETA of the pass and of the run."""

    def __init__(self, log: Callable[[str], None], desc: str, passes: int, every_s: float = LOG_EVERY_S,
                 terminal: bool | None = None, enabled: bool = True):
        self.log, self.desc, self.passes, self.every_s = log, desc, passes, float(every_s)
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.enabled = enabled
        self._bar = None

    def start_pass(self, pass_index: int, steps: int) -> None:
        self.p, self.steps, self.step, self.clips = pass_index, steps, 0, 0
        self.t0 = self.t_last = time.monotonic()
        if self.enabled and self.terminal:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=steps, desc=f"{self.desc} pass {pass_index + 1}/{self.passes}", leave=False,
                             unit="step")

    def update(self, clips: int) -> None:
        self.step += 1
        self.clips += int(clips)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(1)
            return
        now = time.monotonic()
        if now - self.t_last >= self.every_s and self.step < self.steps:
            self.t_last = now
            self.log("  " + self.line(now))

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = max(now - self.t0, 1e-9)
        per_step = elapsed / max(self.step, 1)
        eta_pass = per_step * (self.steps - self.step)
        eta_run = eta_pass + per_step * self.steps * (self.passes - self.p - 1)
        return (f"{self.desc} pass {self.p + 1}/{self.passes} step {self.step}/{self.steps}: "
                f"{self.clips / elapsed:.1f} clips/s, ETA pass {_hms(eta_pass)}, run {_hms(eta_run)}")

    def end_pass(self) -> float:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        return time.monotonic() - self.t0


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass
class TrainResult:
    unreadable: dict                               # video -> reason, over all passes
    history: list = field(default_factory=list)    # per pass: {pass, loss, lr, steps, skipped_steps, seconds, clips_per_s}


def fit(*, ctx, model: nn.Module, optimizer: torch.optim.Optimizer, dataset, batch_size: int, passes: int,
        train_batch: Callable[[dict, int, int], tuple], collate, precision: Precision,
        on_pass_start: Callable[[int], None] | None = None, loader: DataLoader | None = None,
        sampler: PassSampler | None = None, collective_steps: bool = True) -> TrainResult:
    """Train ``model`` for ``passes`` passes over ``dataset`` (resuming from ``ctx.work_dir``'s state).

    ``train_batch(batch, pass, step)`` runs the protocol's optimiser step(s) on one collated batch (items
    that could not be decoded are already counted) and returns (sum of its losses as a device tensor,
    number of steps). ``dataset[(pass, index)]`` gives one item; ``collate`` returns a dict with ``failed``
    (list of (video, reason)) and ``size`` (decodable items; 0 skips the batch).

    Under DDP (``collective_steps``: ``train_batch`` runs the gradient all-reduce) a step is taken by every
    rank or by none: when any rank's batch has no decodable item, all ranks skip that step (its failed videos
    are still counted as unreadable; the other ranks' clips of that step are not trained on) and rank 0 logs
    how many steps a pass skipped. Otherwise the ranks with data would wait for the empty one forever. The
    ranks agree on a CPU (gloo) group, so there is no CUDA host sync per step; with one process nothing is
    exchanged. ``collective_steps=False``: every rank trains the same batches alone (no agreement needed).
    """
    from .state import STATE_FILE

    rank, world = distributed.rank(), distributed.world_size()
    state_path = ctx.work_dir / STATE_FILE
    start_pass, unreadable = resume_state(state_path, model, optimizer, passes, ctx.log)
    clock = getattr(ctx, "clock", None)  # engine.timing.RunClock when run by the runner
    if clock is not None:
        clock.resumed_from(start_pass)
    if sampler is None:
        sampler = PassSampler(len(dataset), ctx.seed, shuffle=True, rank=rank, world=world)
    if loader is None:
        loader = make_loader(dataset, batch_size, sampler, collate, ctx.workers, ctx.device, seed=ctx.seed)
    progress = Progress(ctx.log, ctx.task.id, passes, enabled=rank == 0)
    history = saved_history(state_path) if start_pass else []
    for p in range(start_pass, passes):
        sampler.set_pass(p)
        model.train()
        if on_pass_start is not None:
            on_pass_start(p)
        loss_sum = torch.zeros((), device=precision.device)
        bad = torch.zeros((), dtype=torch.bool, device=precision.device)
        steps = skipped = 0
        progress.start_pass(p, len(loader))
        for step, batch in enumerate(loader):
            for video, reason in batch["failed"]:
                unreadable.setdefault(video, reason)
            size = distributed.min_int(batch["size"]) if collective_steps else batch["size"]
            if not size:
                skipped += 1
            else:
                loss, k = train_batch(batch, p, step)
                loss = loss.detach().float()
                loss_sum += loss
                bad |= ~torch.isfinite(loss)
                steps += k
                if (precision.device.type != "cuda" or step % FINITE_CHECK_EVERY == 0) and bool(bad):
                    raise SevereError(f"task {ctx.task.id}: the training loss became non-finite in pass {p + 1} "
                                      f"(by step {step + 1}); the run is stopped and no result is written")
            progress.update(batch["size"] if size else 0)
        seconds = progress.end_pass()
        if skipped and rank == 0:
            ctx.log(f"  pass {p + 1}/{passes}: {skipped} of {len(loader)} steps skipped"
                    + (" on every rank" if world > 1 and collective_steps else "")
                    + ": a batch had no video that could be decoded")
        unreadable = distributed.merge_dicts(unreadable)
        if bool(distributed.any_true(bad)):
            raise SevereError(f"task {ctx.task.id}: the training loss became non-finite in pass {p + 1}; "
                              "the run is stopped and no result is written")
        total = distributed.sum_tensor(torch.stack([loss_sum, torch.tensor(float(steps), device=loss_sum.device)]))
        mean_loss = float(total[0] / total[1]) if float(total[1]) else float("nan")
        lr = max(g["lr"] for g in optimizer.param_groups)
        # optimiser steps this rank took (the same on every rank under DDP); a counting batch takes a varying
        # number, so the pass's batches alone do not say how long the model trained
        history.append({"pass": p + 1, "loss": mean_loss, "lr": lr, "steps": steps, "skipped_steps": skipped,
                        "seconds": round(seconds, 2),
                        "clips_per_s": round(progress.clips * world / max(seconds, 1e-9), 2)})
        if not float(total[1]):
            raise SevereError(f"task {ctx.task.id}: pass {p + 1} had no training clip that could be decoded "
                              f"({len(unreadable)} unreadable videos)")
        if rank == 0:
            save_state(state_path, model, optimizer, p + 1, unreadable, history=history)
            if clock is not None:
                clock.save()  # a run killed outright keeps the time of its saved passes
        distributed.barrier()
        ctx.log(f"  pass {p + 1}/{passes}: loss {mean_loss:.4f}  lr {lr:.2e}  {seconds:.1f}s  "
                f"{history[-1]['clips_per_s']:.1f} clips/s")
    return TrainResult(unreadable=unreadable, history=history)
