"""The run lock of one (out, task, seed): two ``severe eval`` into one folder never race.

An exclusive ``flock`` on ``OUT/<task>/seed<k>/run.lock``, held for the whole run. The operating system drops
it when the process ends however it ends, so a killed run never leaves a stale lock; the file records who
holds it so that a second run can say which process to wait for.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from ..atomic import ensure_dir, output_error
from ..errors import RunLockedError

LOCK_FILE = "run.lock"


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(info["started"])))
        return f"process {int(info['pid'])} on {info['host']} (since {since})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def run_lock(work_dir: Path, what: str):
    """Hold the lock of ``work_dir`` (one task and seed) or raise ``RunLockedError`` at once."""
    ensure_dir(work_dir)
    path = Path(work_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise output_error(path, exc, "create the run lock") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(f"{what} is already running in {work_dir}: {_holder(path)} holds {path}. "
                                 "Wait for it to finish (or stop it), or use another --out") from None
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing releases the lock
