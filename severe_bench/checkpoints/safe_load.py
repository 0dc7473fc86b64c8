"""Read checkpoint files without running code from them.

Files are read with ``torch.load(weights_only=True)``. Real checkpoints also pickle a few benign extras next to
the weights: numpy scalars and arrays (best accuracy, self-labels), ``argparse.Namespace`` (training arguments),
optimizer state and config strings (the latter two are plain containers that ``weights_only`` accepts anyway).
Exactly those numpy and argparse globals are allow-listed, under both their numpy 2 (``numpy._core``) and numpy 1
(``numpy.core``) names. Any other global is refused before anything is unpickled, with a message naming it;
only ``trust=True`` (``--trust-checkpoint``) loads such a file fully, which can execute arbitrary code.
"""

from __future__ import annotations

import argparse
import os
import pickle
import re
import zipfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError, MissingFileError
from ..provenance import file_sha256

TRUST_HINT = ("pass --trust-checkpoint (trust=True) only if you trust whoever made this file: a full load can "
              "execute arbitrary code")


def _numpy_core():
    core = getattr(np, "_core", None)
    return core if core is not None and hasattr(core, "multiarray") else np.core


@lru_cache(maxsize=1)
def safe_globals() -> list:
    """The allow-list: numpy array/scalar reconstruction, numpy dtypes, argparse.Namespace."""
    ma = _numpy_core().multiarray
    allowed: list = [ma._reconstruct, ma.scalar, np.ndarray, np.dtype, argparse.Namespace]
    for name in ("_reconstruct", "scalar"):  # files written with numpy 1.x name numpy.core.multiarray.*
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            allowed.append((getattr(ma, name), f"{module}.{name}"))
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles dtype instances through their classes
    if dtypes is not None:
        allowed += [getattr(dtypes, n) for n in getattr(dtypes, "__all__", []) if isinstance(getattr(dtypes, n, None), type)]
    return allowed


@lru_cache(maxsize=1)
def allowed_names() -> frozenset[str]:
    names = set()
    for item in safe_globals():
        if isinstance(item, tuple):
            names.add(item[1])
        else:
            names.add(f"{item.__module__}.{item.__qualname__}")
    return frozenset(names)


_digests: dict[tuple, str] = {}


def sha256_file(path: str | Path) -> str:
    """sha256 of a checkpoint file, read once per process and file version: a command that checks a download,
    identifies the file in the registry and records its hash reads a large file once. Keyed by inode, size and
    mtime, so a finished download renamed from ``.part`` into place is not read again."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _digests:
        _digests[key] = file_sha256(path)
    return _digests[key]


# torch's legacy (non-zip) format opens with a pickled magic number: PROTO n, LONG1 10 bytes, the number
_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def check_looks_like_checkpoint(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(64)
    size = path.stat().st_size
    if not head:
        raise CheckpointError(f"{path}: the file is empty")
    if zipfile.is_zipfile(path):  # torch's zip format
        return
    if head.startswith(b"PK\x03\x04"):
        raise CheckpointError(f"{path}: the checkpoint is incomplete: a zip archive without its end "
                              f"({size} bytes; a truncated download or copy?); fetch or copy it again")
    if head[:1] == b"\x80":
        if b"\x8a\x0a" + _LEGACY_MAGIC in head[:32]:  # torch's legacy format (protocol >= 4 adds a FRAME first)
            return
        raise CheckpointError(f"{path}: not a PyTorch checkpoint: a pickle stream without torch's header "
                              f"(starts with {head[:16]!r}; random or damaged bytes, or a plain pickle?)")
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html")):
        raise CheckpointError(f"{path}: this is an HTML page, not a checkpoint (a download that needed a login or "
                              "a confirmation page?)")
    raise CheckpointError(f"{path}: not a PyTorch checkpoint (starts with {head[:16]!r})")


def _unsafe_globals(path: Path) -> list[str]:
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # legacy (non-zip) files: rely on the unpickler's own refusal below
        return []
    return [g for g in found if g not in allowed_names()]


_GLOBAL_RE = re.compile(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL|global)\s+([A-Za-z_][\w.]*\.[\w]+)")


def load_file(path: str | Path, trust: bool = False):
    """The unpickled checkpoint object (usually a dict), weights on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    check_looks_like_checkpoint(path)
    if trust:
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # a full unpickle of a damaged file fails in many ways; none is a bug here
            raise CheckpointError(f"{path}: cannot read the checkpoint even with --trust-checkpoint "
                                  f"({type(exc).__name__}: {str(exc)[:300]}); is the file complete?") from None
    unsafe = _unsafe_globals(path)
    if unsafe:
        raise CheckpointError(f"{path}: refused to load: the file pickles global(s) outside the allow-list: "
                              f"{', '.join(unsafe)}; {TRUST_HINT}")
    try:
        with torch.serialization.safe_globals(safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        msg = str(exc)
        names = sorted(set(_GLOBAL_RE.findall(msg)))
        if names:
            raise CheckpointError(f"{path}: refused to load: the file pickles global(s) outside the allow-list: "
                                  f"{', '.join(names)}; {TRUST_HINT}") from None
        # no global named: torch's header was there (checked above), so the stream is damaged or unusual
        reason = next((ln.strip() for ln in msg.splitlines() if ln.strip() and not ln.strip().startswith(
            ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)",
             "WeightsUnpickler"))), "an invalid pickle stream")
        raise CheckpointError(f"{path}: cannot read the checkpoint safely: the weights-only reader stopped at "
                              f"{reason[:200]!r} (a damaged file, or a pickle protocol it does not support); if the "
                              f"file is complete, {TRUST_HINT}") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {str(exc)[:300]}); "
                              "is the file complete?") from None


def _load_safetensors(path: Path):
    try:
        from safetensors.torch import load_file as st_load
    except ImportError:
        raise CheckpointError(f"{path}: reading .safetensors files needs the `safetensors` package") from None
    return st_load(str(path), device="cpu")
