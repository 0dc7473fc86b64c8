"""Atomic file writes: a uniquely named temporary file beside the target, then ``os.replace``.

Two processes writing the same target never share a temporary name, an interrupted or failed write leaves
the previous file intact and no temporary behind, and a full disk, a read-only folder or a file where a
folder should be become an ``OutputError`` that names the path instead of an ``OSError`` traceback.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from .errors import OutputError

_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied (a read-only or immutable folder or file?)",
    errno.EPERM: "operation not permitted (an immutable folder or file?)",
    errno.ENOTDIR: "a parent of it is a file, not a folder",
    errno.EISDIR: "it is a folder",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EFBIG: "the file grew past what may be written (a file size limit, or a full disk)",
}


def output_error(path: Path, exc: BaseException, what: str = "write") -> OutputError:
    """A user-facing error for an ``OSError`` met while writing ``path``."""
    code = getattr(exc, "errno", None)
    reason = _REASONS.get(code) or getattr(exc, "strerror", None) or str(exc)
    hint = "free some space or choose another --out" if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) \
        else "choose a writable --out"
    return OutputError(f"cannot {what} {path}: {reason}; {hint}")


def ensure_dir(path: Path) -> Path:
    """``mkdir -p`` with a clear error when a parent is a file or the location is not writable."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # a file sits where a folder should be
        blocker = next((p for p in (path, *path.parents) if p.exists()), path)
        raise OutputError(f"cannot create folder {path}: {blocker} is a file, not a folder; "
                          "choose another --out") from exc
    except OSError as exc:
        raise output_error(path, exc, "create folder") from exc
    return path


def check_writable_dir(path: Path, option: str = "--out") -> Path:
    """Create ``path`` if needed and prove that a file can be made in it, so a read-only, immutable or
    under-a-file ``option`` fails at once with a clear message, before any work is done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file, not a folder; choose another {option}")
    ensure_dir(path)
    try:
        fd, probe = tempfile.mkstemp(prefix=".severe-write-check.", dir=path)
    except OSError as exc:
        raise output_error(path, exc, f"write into {option}") from exc
    os.close(fd)
    os.unlink(probe)
    return path


def _looks_like_write_failure(exc: RuntimeError) -> bool:
    # torch's C++ stream writer reports a failed write (e.g. a full disk) as a RuntimeError
    text = str(exc)
    return "PytorchStreamWriter" in text or "enforce fail" in text or "unexpected pos" in text


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a fresh temporary beside ``path``, then move it onto ``path`` in one step."""
    path = Path(path)
    ensure_dir(path.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise output_error(path, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the target gets the usual permissions
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise output_error(path, exc) from exc
    except RuntimeError as exc:
        tmp.unlink(missing_ok=True)
        if not _looks_like_write_failure(exc):
            raise
        free = shutil.disk_usage(path.parent).free
        raise OutputError(f"cannot write {path}: the write failed with {free / 2**20:.0f} MiB free on its "
                          "device (full disk?); free some space or choose another --out") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(path: Path, payload) -> None:
    import torch

    atomic_write(path, lambda tmp: torch.save(payload, tmp))
