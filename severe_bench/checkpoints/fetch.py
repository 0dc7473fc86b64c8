"""Downloads into the cache: resumable (HTTP Range), sha256-checked, atomic.

A download goes to ``<dest>.part``; an interrupted one resumes from the bytes already there when the server
honours ``Range`` (206), and starts over when it does not (200). Only a complete file whose sha256 matches
(when the registry knows it) is renamed to its final name; a mismatch deletes the partial file.
Checkpoints land in ``<cache>/checkpoints/<name>/<file>``; archives in ``<cache>/checkpoints/_archives/``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from ..errors import CheckpointError
from ..resources import cache_dir
from . import hashlock
from .registry import Archive, Entry, Registry
from .safe_load import sha256_file

CHUNK = 1 << 20
USER_AGENT = "severe-bench (+https://github.com/fmthoker/SEVERE-BENCHMARK)"


def checkpoints_dir() -> Path:
    """``<cache>/checkpoints`` (created by the first download, not by look-ups)."""
    return cache_dir() / "checkpoints"


def entry_path(entry: Entry) -> Path:
    return checkpoints_dir() / entry.name / entry_file_name(entry)


def entry_file_name(entry: Entry) -> str:
    src = entry.source
    if src.file:
        return src.file
    if src.member:
        return Path(src.member).name
    return Path(urllib.parse.urlparse(src.url or "").path).name or f"{entry.name}.pth"


def url_cache_path(url: str) -> Path:
    """Where a checkpoint given as a bare URL is cached: by a hash of the URL, under its own file name."""
    name = Path(urllib.parse.urlparse(url).path).name or "checkpoint.pth"
    key = hashlib.sha256(url.encode()).hexdigest()[:16]
    return checkpoints_dir() / "_urls" / key / name


def _progress(total: int | None, initial: int, desc: str):
    try:
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, unit="B", unit_scale=True, desc=desc, file=sys.stderr,
                    disable=None, leave=False)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None


def download(url: str, dest: str | Path, sha256: str | None = None, sha256_prefix: str | None = None,
             timeout: float = 60.0, check_file: bool = False) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify, and return ``dest``. ``check_file``: the
    download is a checkpoint or archive; without a known hash it must at least be a whole one."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch: the partial file is complete
            return _finish(part, dest, url, sha256, sha256_prefix)
        raise CheckpointError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise CheckpointError(f"download of {url} failed: {exc}; run the same command again to resume") from None
    with response:
        status = getattr(response, "status", 200)
        if "text/html" in (response.headers.get("Content-Type") or "").lower():
            raise CheckpointError(f"{url} answered with a web page instead of the file (a login, quota or "
                                  "confirmation page?); download it in a browser and give its path")
        if have and status == 206:
            mode = "ab"
        else:  # the server ignored Range (or there was nothing to resume): start over
            mode, have = "wb", 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        full = (response.headers.get("Content-Range") or "").rpartition("/")[2]
        if status == 206 and full.isdigit():  # "bytes start-end/size": the whole file's size
            total = int(full) if total is None else total
        bar = _progress(total, have, dest.name)
        written = have
        try:
            with open(part, mode) as f:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    f.write(block)
                    written += len(block)
                    if bar is not None:
                        bar.update(len(block))
        except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
            raise CheckpointError(f"download of {url} interrupted after {written} bytes ({exc}); run the same "
                                  f"command again to resume from {part}") from None
        finally:
            if bar is not None:
                bar.close()
    if total is not None and written < total:
        raise CheckpointError(f"download of {url} stopped at {written} of {total} bytes; run the same command "
                              f"again to resume from {part}")
    if total is not None and written > total:
        part.unlink(missing_ok=True)
        raise CheckpointError(f"download of {url} sent {written} bytes where the server announced {total}; "
                              "the download was discarded, run the same command again")
    if check_file and total is None and not (sha256 or sha256_prefix):
        problem = file_problem(part)  # no size and no hash to check: at least it must be a whole checkpoint
        if problem:
            part.unlink(missing_ok=True)
            why = "; the server sent no Content-Length, so the reply was probably cut short"
            raise CheckpointError(f"download of {url} is not usable ({problem}{why}); it was discarded (cache: "
                                  f"{dest.parent}); run the same command again or check the URL")
    return _finish(part, dest, url, sha256, sha256_prefix)


def _finish(part: Path, dest: Path, url: str, sha256: str | None, sha256_prefix: str | None) -> Path:
    digest = sha256_file(part)
    expected = (sha256 or "").lower()
    if expected and digest != expected or sha256_prefix and not digest.startswith(sha256_prefix.lower()):
        part.unlink(missing_ok=True)
        want = expected or f"{sha256_prefix}..."
        raise CheckpointError(f"sha256 mismatch for {url}: expected {want}, got {digest}; the download was "
                              "discarded")
    os.replace(part, dest)
    return dest


def verify_existing(path: Path, sha256: str | None, sha256_prefix: str | None) -> str | None:
    """Check a file against the registry's hash (nothing to do, and nothing read, when none is known)."""
    if not (sha256 or sha256_prefix):
        return None
    digest = sha256_file(path)
    if sha256 and digest != sha256.lower() or sha256_prefix and not digest.startswith(sha256_prefix.lower()):
        raise CheckpointError(f"{path}: sha256 {digest} does not match the registry "
                              f"({sha256 or sha256_prefix + '...'}); delete it and fetch again")
    return digest


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a complete checkpoint or archive (cheap checks of its shape), or None."""
    from .safe_load import check_looks_like_checkpoint

    path = Path(path)
    name = path.name.removesuffix(".part")
    if name.endswith(".zip"):
        return None if zipfile.is_zipfile(path) else "not a complete zip archive"
    if name.endswith(".safetensors"):
        return None if path.stat().st_size > 8 else "an empty safetensors file"
    try:
        check_looks_like_checkpoint(path)
    except CheckpointError as exc:
        return str(exc).removeprefix(f"{path}: ")
    return None


def cached_problem(path: Path, sha256: str | None = None, sha256_prefix: str | None = None,
                   shape: bool = True) -> str | None:
    """Why a cached download cannot be used (fails its known sha256, or with ``shape`` is not a whole
    checkpoint), or None."""
    try:
        verify_existing(path, sha256, sha256_prefix)
    except CheckpointError as exc:
        return str(exc).removeprefix(f"{path}: ").split(";")[0]
    return file_problem(path) if shape else None


def in_cache(path: Path) -> bool:
    """Whether ``path`` is one of our downloads (which may be discarded), not a file the user keeps."""
    try:
        Path(path).resolve().relative_to(checkpoints_dir().resolve())
        return True
    except ValueError:
        return False


def discard_cached(path: Path, reason: str) -> None:
    """Delete a bad cached download so that it is fetched again (said on standard error)."""
    print(f"cached checkpoint {path} is unusable ({reason}); discarding it and downloading again "
          f"(cache: {checkpoints_dir()})", file=sys.stderr)
    Path(path).unlink(missing_ok=True)


def fetch_archive(archive: Archive, force: bool = False) -> Path:
    dest = checkpoints_dir() / "_archives" / archive.file
    if dest.exists() and not force:
        return dest
    return download(archive.url, dest, sha256=archive.sha256)


def extract_member(archive_path: Path, member: str, dest: Path) -> Path:
    """Copy ``member`` out of a zip archive; a member is also found under another top-level folder name."""
    try:
        zf = zipfile.ZipFile(archive_path)
    except zipfile.BadZipFile:
        raise CheckpointError(f"{archive_path} is not a zip archive; delete it and fetch again") from None
    with zf:
        names = zf.namelist()
        wanted = member.strip("/")
        tail = "/".join(wanted.split("/")[1:])
        hit = next((n for n in names if n == wanted), None) or \
            next((n for n in names if tail and (n == tail or n.endswith("/" + tail))), None)
        if hit is None:
            raise CheckpointError(f"{archive_path} has no member {member!r} ({len(names)} members, e.g. {names[:5]})")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        with zf.open(hit) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, CHUNK)
        os.replace(tmp, dest)
    return dest


def search_paths() -> list[Path]:
    """Folders where checkpoints downloaded by hand are looked up (``SEVERE_CHECKPOINTS_PATH``, ``:``-separated)."""
    raw = os.environ.get("SEVERE_CHECKPOINTS_PATH", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p]


def find_local(entry: Entry) -> Path | None:
    """An already available copy of ``entry``: the cache, or a search-path folder (archive layout or flat)."""
    if entry.source.hub:  # the Hugging Face cache under <cache>/huggingface
        from .hub import cached_weights

        return cached_weights(entry.source.hub, entry.source.revision)
    cached = entry_path(entry)
    if cached.exists():
        return cached
    rels = [entry_file_name(entry), f"{entry.name}/{entry_file_name(entry)}"]
    if entry.source.member:
        parts = entry.source.member.strip("/").split("/")
        rels = ["/".join(parts), "/".join(parts[1:])] + rels
    for base in search_paths():
        for rel in rels:
            if rel and (base / rel).is_file():
                return base / rel
    return None


def fetch(entry: Entry, registry: Registry, force: bool = False) -> Path:
    """Make ``entry`` available in the cache (download or extract) and check its hash."""
    src = entry.source
    if src.hub:
        from .hub import model_weights

        path = model_weights(src.hub, src.revision, force_download=force)
        verify_existing(path, src.sha256, src.sha256_prefix)
        hashlock.record_download(entry.name, path, sha256_file(path), f"hf:{src.hub}@{src.revision or 'main'}")
        return path
    dest = entry_path(entry)
    if dest.exists() and not force:
        # a registry copy is judged by its hash (published or locked); a URL's copy also by its shape (loader)
        problem = cached_problem(dest, src.sha256, src.sha256_prefix, shape=False)
        if not problem:
            return dest
        discard_cached(dest, problem)  # fetched again once below; a second bad copy is an error
    if src.url:
        download(src.url, dest, sha256=src.sha256,
                 sha256_prefix=src.sha256_prefix or hashlock.publisher_sha256_prefix(src.url), check_file=True)
    else:
        archive = registry.archives[src.archive]
        archive_path = fetch_archive(archive, force=force)
        extract_member(archive_path, src.member, dest)
        try:
            verify_existing(dest, src.sha256, src.sha256_prefix)
        except CheckpointError:
            dest.unlink(missing_ok=True)
            raise
    # passed every check the registry allows: the first such download's sha256 goes into the lock file
    hashlock.record_download(entry.name, dest, sha256_file(dest), src.url or registry.archives[src.archive].url)
    return dest
