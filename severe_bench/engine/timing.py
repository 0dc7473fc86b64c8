"""Wall time of one (task, seed) run over every invocation that worked on it.

A run that is interrupted and resumed is timed across all its invocations, and each invocation is listed (when
it started, from which pass, how long it ran, on which device). The record lives beside the training state and
is rewritten after every saved pass as well as when an invocation ends, so a run that is killed outright
(SIGKILL, a lost machine, a preempted job) loses at most the time of the pass it had not finished.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ..errors import SevereError
from ..provenance import utc_now
from ..results import write_json

TIMING_FILE = "timing.json"


class RunClock:
    """Times one invocation on top of what ``path`` says the earlier ones took (none unless ``resuming``)."""

    def __init__(self, path: Path, *, resuming: bool, device: str, enabled: bool = True):
        self.path = path
        self.enabled = enabled  # only the writing rank keeps the record
        self.earlier = _read(path) if resuming else []
        self.t0 = time.time()
        self.current = {"started_at": utc_now(), "start_pass": None, "seconds": 0.0, "device": device}

    def resumed_from(self, start_pass: int) -> None:
        """The trainer says from which pass this invocation starts (0: from the beginning)."""
        self.current["start_pass"] = int(start_pass)

    def record(self) -> dict:
        """{"wall_time_s": sum over the invocations, "invocations": [...]}, this one timed up to now."""
        self.current["seconds"] = round(time.time() - self.t0, 2)
        invocations = [*self.earlier, dict(self.current)]
        return {"wall_time_s": round(sum(i["seconds"] for i in invocations), 2), "invocations": invocations}

    def save(self) -> None:
        """Write the record now (after a saved pass, or as the invocation ends)."""
        if not self.enabled:
            return
        try:
            write_json(self.path, self.record())
        except SevereError:
            pass  # informative only; the error that stopped the run (if any) matters more


def _read(path: Path) -> list[dict]:
    """Earlier invocations from ``path``; a missing or damaged record counts as none (it is informative only).
    A record from before invocations were listed becomes one entry with its total."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(doc, dict):
        return []
    listed = doc.get("invocations")
    if isinstance(listed, list) and all(isinstance(i, dict) and _seconds(i.get("seconds")) is not None
                                        for i in listed):
        return [dict(i, seconds=_seconds(i["seconds"])) for i in listed]
    total = _seconds(doc.get("wall_time_s"))
    return [] if total is None else [{"started_at": None, "start_pass": None, "seconds": total, "device": None}]


def _seconds(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value >= 0 else None
