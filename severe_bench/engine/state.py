"""What the training runners (``finetune``, ``counting``) share: DataLoader worker settings and the training
state saved after every pass, from which a rerun resumes (model, optimiser, passes done, unreadable videos,
torch RNG)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

STATE_FILE = "state.pt"


def loader_kwargs(workers: int, device) -> dict:
    """DataLoader arguments for ``workers`` decoding processes (0: decode in the main process); batches go
    to pinned memory when the model is on CUDA, so the copy to the device overlaps the step."""
    if workers <= 0:
        return {"num_workers": 0, "pin_memory": torch.device(device).type == "cuda"}
    ctx = "fork" if os.name == "posix" else None  # fork starts in ms; spawn costs ~2 s per worker
    return {"num_workers": workers, "multiprocessing_context": ctx, "worker_init_fn": _worker_init,
            "pin_memory": torch.device(device).type == "cuda"}


def _worker_init(_):
    torch.set_num_threads(1)  # workers decode and resize; the parent process owns the cores for the model


def save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, passes_done: int,
               unreadable: dict, history: list | None = None) -> None:
    payload = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "passes_done": passes_done,
               "unreadable": unreadable, "torch_rng": torch.get_rng_state(), "history": list(history or [])}
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # an interrupted save never leaves a half-written state


def resume_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, passes: int,
                 log: Callable[[str], None]) -> tuple[int, dict]:
    """(passes done, unreadable videos) of the state saved at ``path``, loaded into ``model``, ``optimizer``
    and the torch RNG; ``(0, {})`` when there is none."""
    if not path.exists():
        return 0, {}
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["torch_rng"])
    start_pass = int(state["passes_done"])
    log(f"  resuming from pass {start_pass}/{passes} ({path})")
    return start_pass, dict(state["unreadable"])


def saved_history(path: Path) -> list:
    """The per-pass history stored with the state at ``path`` (empty for a state that has none)."""
    if not path.exists():
        return []
    return list(torch.load(path, map_location="cpu", weights_only=True).get("history", []))
