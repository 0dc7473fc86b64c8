"""What the training runners (``finetune``, ``counting``) share: DataLoader worker settings and the training
state saved after every pass, from which a rerun resumes (model, optimiser, passes done, unreadable videos,
torch RNG)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..atomic import atomic_torch_save
from ..errors import SevereError


class StateError(SevereError):
    """A saved training state that cannot be resumed."""


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
    atomic_torch_save(path, payload)  # unique temporary + rename: never a half-written state


def resume_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, passes: int,
                 log: Callable[[str], None]) -> tuple[int, dict]:
    """(passes done, unreadable videos) of the state saved at ``path``, loaded into ``model``, ``optimizer``
    and the torch RNG; ``(0, {})`` when there is none."""
    if not path.exists():
        return 0, {}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start_pass = int(state["passes_done"])
        unreadable = dict(state["unreadable"])
        if not 0 <= start_pass <= passes:
            raise ValueError(f"passes_done {start_pass} is outside 0..{passes}")
    except Exception as exc:  # a damaged, truncated or foreign file: say so and what to do, no traceback
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StateError(f"{path}: damaged training state ({type(exc).__name__}: {reason[:200]}); pass --restart "
                         "to discard it and train from the start, or use another --out") from None
    log(f"  resuming from pass {start_pass}/{passes} ({path})")
    return start_pass, unreadable


def saved_history(path: Path) -> list:
    """The per-pass history stored with the state at ``path`` (empty for a state that has none)."""
    if not path.exists():
        return []
    return list(torch.load(path, map_location="cpu", weights_only=True).get("history", []))
