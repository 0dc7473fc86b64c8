"""setuptools build hook: record the commit a wheel is built from in ``severe_bench/_build_info.py``.

A wheel install has no ``.git`` beside the package, so ``severe_bench.provenance`` reads the commit (and whether
the tree had uncommitted changes) from this generated module instead. Built outside a git checkout (e.g. from an
sdist), the module records no commit and results say ``source: none``.
"""

from __future__ import annotations

import datetime as _dt
import subprocess
from pathlib import Path

from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def build_info_source() -> str:
    commit = _git("rev-parse", "HEAD") if (ROOT / ".git").exists() else ""
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no")) if commit else False
    built = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return ('"""Written by build_hooks.py when this package was built; do not edit."""\n\n'
            f"COMMIT = {commit or None!r}\nDIRTY = {dirty!r}\nBUILT_AT = {built!r}\n")


class BuildPyWithCommit(build_py):
    def run(self):
        super().run()
        if not self.editable_mode:  # an editable install reads the live checkout instead
            target = Path(self.build_lib) / "severe_bench" / "_build_info.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(build_info_source(), encoding="utf-8")
