"""Locate the project's config-as-data: tasks/, checkpoints.yaml, leaderboard/reference/.

From a source checkout (or an editable install) they sit beside the package; a wheel install ships them
under ``<sys.prefix>/share/severe-bench``. ``SEVERE_HOME`` overrides both (tests, custom registries).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import SevereError

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def _candidates() -> list[Path]:
    out = []
    if os.environ.get("SEVERE_HOME"):
        out.append(Path(os.environ["SEVERE_HOME"]))
    out.append(_PACKAGE_PARENT)
    out.append(Path(sys.prefix) / "share" / "severe-bench")
    return out


def resource_path(relative: str) -> Path:
    """Path of a bundled resource, e.g. ``resource_path("tasks")``; raises if no install has it."""
    for base in _candidates():
        p = base / relative
        if p.exists():
            return p
    tried = ", ".join(str(b / relative) for b in _candidates())
    raise SevereError(f"bundled resource {relative!r} not found (looked in: {tried}); reinstall severe-bench")


def cache_dir() -> Path:
    """Where generated data and downloads land: $SEVERE_CACHE, else $XDG_CACHE_HOME/severe-bench."""
    if os.environ.get("SEVERE_CACHE"):
        root = Path(os.environ["SEVERE_CACHE"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "severe-bench"
    root.mkdir(parents=True, exist_ok=True)
    return root
