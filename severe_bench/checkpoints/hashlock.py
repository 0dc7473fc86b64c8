"""Trust on first use for checkpoint files: the sha256 of the first verified download is kept in a lock file.

Few publishers state a hash (the registry's ``sha256`` is null for most entries), so a fetch could not tell a
replaced or corrupted file from the one every earlier result used. ``<cache>/checkpoints/sha256.lock.json``
records, per registry entry (or ``url:<URL>`` for a bare URL), the sha256 of the first download that passed the
checks the registry allows (full hash, publisher prefix, complete length). A later download that differs is
reported (the file is kept, the lock is not changed: results record the file's own sha256 either way).
Delete the entry from the lock file to accept a new file.

Where the publisher states a hash, it is checked: torchvision's (torch.hub's) file names end in the first
hex digits of the file's sha256 (``r2plus1d_18-91a641e6.pth``).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import sys
import tempfile
import urllib.parse
from contextlib import contextmanager
from pathlib import Path

from ..resources import cache_dir

LOCK_FILE = "sha256.lock.json"
LOCK_SCHEMA = "severe-bench/checkpoint-lock/v1"
# hosts whose file names carry a sha256 prefix (torch.hub's convention: ``<name>-<hex>.<ext>``)
HASH_NAMING_HOSTS = ("download.pytorch.org",)
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9.]+$")


def lock_path() -> Path:
    return cache_dir() / "checkpoints" / LOCK_FILE


def publisher_sha256_prefix(url: str | None) -> str | None:
    """The sha256 prefix a publisher states in the file name of ``url`` (torch.hub convention), else None."""
    if not url:
        return None
    parsed = urllib.parse.urlparse(url)
    if parsed.hostname not in HASH_NAMING_HOSTS:
        return None
    m = _HASH_IN_NAME.search(Path(parsed.path).name)
    return m.group(1) if m else None


def read_lock(path: Path | None = None) -> dict:
    """``{key: {sha256, size, file, source, recorded_at}}``; empty when there is no (readable) lock file."""
    path = path or lock_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    entries = data.get("entries") if isinstance(data, dict) else None
    return entries if isinstance(entries, dict) else {}


@contextmanager
def _exclusive(path: Path):
    """Serialise read-modify-write of the lock between processes (POSIX advisory lock; no-op elsewhere)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path.with_name(path.name + ".flock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write(path: Path, entries: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"schema": LOCK_SCHEMA, "entries": entries}, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def record_download(key: str, file: Path, digest: str, source: str | None = None,
                    warn=lambda msg: print(f"warning: {msg}", file=sys.stderr)) -> str:
    """Record ``digest`` as ``key``'s first verified download, or compare with the recorded one.

    Returns ``"recorded"`` (first download), ``"same"`` or ``"differs"`` (a warning is printed; the lock keeps
    the first hash)."""
    path = lock_path()
    with _exclusive(path):
        entries = read_lock(path)
        known = entries.get(key)
        if known and known.get("sha256"):
            if known["sha256"] == digest:
                return "same"
            warn(f"{key}: the downloaded file {file} has sha256 {digest}, but the first download recorded on "
                 f"{known.get('recorded_at', '?')} had {known['sha256']} ({path}). The publisher may have replaced "
                 "the file or the download is damaged: results with it are not comparable with earlier ones. "
                 f"Delete the {key!r} entry from {path} to accept the new file.")
            return "differs"
        entries[key] = {"sha256": digest, "size": Path(file).stat().st_size, "file": Path(file).name,
                        "source": source,
                        "recorded_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        _write(path, entries)
    return "recorded"


def check_against_lock(key: str, file: Path, digest: str,
                       warn=lambda msg: print(f"warning: {msg}", file=sys.stderr)) -> bool:
    """Warn when a local copy about to be used differs from the first download recorded for ``key``
    (a file replaced by hand, or damaged on disk); True when it matches or nothing is recorded."""
    known = read_lock().get(key) or {}
    if not known.get("sha256") or known["sha256"] == digest:
        return True
    warn(f"{key}: {file} has sha256 {digest}, not the {known['sha256']} of the first download "
         f"({known.get('recorded_at', '?')}, {lock_path()}); results with it are not comparable with earlier ones")
    return False


def url_key(url: str) -> str:
    return f"url:{url}"
