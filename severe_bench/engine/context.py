"""What a protocol runner gets, and what it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch


@dataclass
class RunContext:
    task: Any                 # severe_bench.registry.Task (protocol values in task.protocol)
    root: Path                # dataset root; Sample.video is relative to it
    train_samples: list       # list[Sample], subset already applied
    test_samples: list
    num_classes: int | None   # None for counting
    checkpoint: Any           # severe_bench.checkpoints.LoadedCheckpoint (.backbone, .info)
    normalisation: dict       # effective {mean, std, channel_order}: checkpoint quirks over protocol values
    seed: int
    device: torch.device
    work_dir: Path            # resume state and per-run artefacts live here
    workers: int = 2
    log: Callable[[str], None] = print
    # the values the checkpoint's scoped overrides set (already merged into task.protocol; for logs/records)
    overrides: dict = field(default_factory=dict)
    precision: str = "auto"   # engine.trainer.PRECISIONS: how the step runs (not a protocol value)
    compile: bool = False     # torch.compile the model's forward pass
    clock: Any = None         # engine.timing.RunClock: told the start pass; saved with every pass's state


@dataclass
class Outcome:
    metrics: dict             # metric name -> value (primary metric included)
    unreadable: list          # root-relative paths of videos that could not be decoded
    num_train: int
    num_test: int             # test videos scored (readable ones)
    predictions: dict = field(default_factory=dict)  # optional per-video outputs for the result folder
    engine: dict = field(default_factory=dict)       # precision, layout, world size, workers (result "engine")
    history: list = field(default_factory=list)      # per pass: loss, lr, steps, seconds, clips/s
    truncated: dict = field(default_factory=dict)    # test video -> why it looks truncated (scored, counted)
