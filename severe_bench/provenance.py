"""Provenance recorded in every result: code version (commit, dirty tree), libraries, device, command, time."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from . import __version__

# distributions whose versions a reviewer needs to rerun a result (decord or PyAV decodes the videos)
LIBRARIES = ("torch", "torchvision", "numpy", "decord", "av", "fvcore", "timm")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=5).stdout.strip()


def _git_info() -> dict | None:
    repo = Path(__file__).resolve().parent.parent
    if not (repo / ".git").exists():
        return None
    try:
        commit = _git(repo, "rev-parse", "HEAD")
        dirty = bool(_git(repo, "status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty, "source": "git"} if commit else None


def _build_info() -> dict | None:
    """The commit a wheel was built from, written by the build hook (``build_hooks.py``) into ``_build_info.py``."""
    try:
        from . import _build_info as info  # absent in a source checkout
    except ImportError:
        return None
    if not getattr(info, "COMMIT", None):
        return None
    return {"commit": info.COMMIT, "dirty": bool(info.DIRTY), "source": "build"}


def code_info() -> dict:
    """``{version, commit, dirty, source}``; ``source`` says where the commit came from: ``git`` (a checkout),
    ``build`` (recorded when the wheel was built) or ``none`` (commit and dirty flag unknown)."""
    found = _git_info() or _build_info() or {"commit": None, "dirty": None, "source": "none"}
    return {"version": __version__, **found}


def code_version(info: dict | None = None) -> str:
    """``<version>+g<commit>[.dirty]`` when the commit is known, else the package version."""
    info = info or code_info()
    if not info.get("commit"):
        return __version__
    return f"{__version__}+g{info['commit'][:7]}{'.dirty' if info.get('dirty') else ''}"


def library_versions() -> dict:
    """Python and the installed versions of ``LIBRARIES`` (None where not installed)."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def command_line(argv: list[str] | None = None) -> dict:
    """The command that produced a result, as argv and as a line a shell accepts."""
    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).name == "__main__.py" and Path(argv[0]).parent.name == "severe_bench":
        argv = ["python", "-m", "severe_bench", *argv[1:]]
    elif argv and Path(argv[0]).name == "severe":
        argv = ["severe", *argv[1:]]
    return {"argv": argv, "line": shlex.join(argv)}


def device_info(device: torch.device) -> dict:
    import torch  # here, not at import: the file hash below serves torch-free modules (the synthetic suite)

    info = {"type": device.type, "torch": torch.__version__, "host": platform.node()}
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type == "cuda":
        info["name"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    else:
        info["name"] = platform.processor() or platform.machine()
        info["threads"] = torch.get_num_threads()
    info["gpu_count"] = gpus
    info["gpu_names"] = [torch.cuda.get_device_name(i) for i in range(gpus)]
    return info


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 (hex) of a file's contents, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
