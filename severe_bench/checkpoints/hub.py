"""Hugging Face Hub model ids as checkpoints: ``MCG-NJU/videomae-base`` (or ``hf:MCG-NJU/videomae-base@<revision>``).

Only ``config.json`` and one weights file are fetched (``model.safetensors``, else ``pytorch_model.bin``), through
``huggingface_hub`` into ``<cache>/huggingface`` (the severe-bench cache, like every other download; the Hub's
own snapshot layout, so a second run reads the files from there without asking the Hub). Offline
(``SEVERE_OFFLINE``, ``HF_HUB_OFFLINE``, or no network) only the cache is read, and a model not in it gets a
message saying how to use a local folder instead.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from ..errors import CheckpointError
from ..resources import cache_dir
from .hf_config import WEIGHT_FILES

PREFIX = "hf:"
_REPO = r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}"
_HUB_ID = re.compile(rf"(?:{PREFIX})?(?P<repo>{_REPO})(?:@(?P<revision>[\w./-]+))?")


def parse_hub_id(spec: str) -> tuple[str, str | None] | None:
    """(repo id, revision or None) when ``spec`` has the form of a Hub model id, else None."""
    m = _HUB_ID.fullmatch(spec)
    if m is None or ".." in m.group("repo"):
        return None
    return m.group("repo"), m.group("revision")


def hub_cache() -> Path:
    return cache_dir() / "huggingface"


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() not in ("", "0", "false", "no")
               for v in ("SEVERE_OFFLINE", "HF_HUB_OFFLINE"))


def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hub cannot be reached (one TCP connect to $HF_ENDPOINT, default huggingface.co), or None. Checked
    before downloading so that a machine without a network gets its answer at once, not after
    huggingface_hub's retries (~25 s). Behind a proxy (HTTPS_PROXY / HTTP_PROXY) the check is left to the
    download itself."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return None
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or type(exc).__name__}"
    return None


def offline_message(repo: str, why: str) -> str:
    return (f"Hugging Face model {repo!r} is not in the cache ({hub_cache()}) and the Hub cannot be reached ({why}). "
            f"Download the model folder where there is a network, e.g. `hf download {repo} config.json "
            f"model.safetensors --local-dir DIR` (or save_pretrained), copy it here and pass the folder: "
            "--checkpoint DIR")


def _download(repo: str, filename: str, revision: str | None, local_only: bool, force: bool = False) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo, filename, revision=revision, cache_dir=str(hub_cache()),
                                local_files_only=local_only, force_download=force and not local_only))


def model_weights(repo: str, revision: str | None = None, download: bool = True, force_download: bool = False) -> Path:
    """The weights file of Hub model ``repo`` in the cache (fetched first when allowed); config.json beside it."""
    try:
        from huggingface_hub import errors as hf_errors
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        raise CheckpointError("Hugging Face model ids need the `huggingface_hub` package; or pass a local folder") from None
    local_only = _offline() or not download
    why = "downloads are off: SEVERE_OFFLINE / HF_HUB_OFFLINE" if local_only else "no connection"
    if not local_only:
        unreachable = hub_unreachable()
        if unreachable:  # use the cache alone; a model not in it gets the offline message straight away
            local_only, why = True, unreachable
    try:
        _download(repo, "config.json", revision, local_only, force_download)
        weights, missing = None, None
        for name in WEIGHT_FILES:
            try:
                weights = _download(repo, name, revision, local_only, force_download)
                break
            except hf_errors.EntryNotFoundError as exc:  # remote: not in the repository; local: not in the cache
                missing = exc  # this repository (or the cache) may hold the other format
    except hf_errors.RepositoryNotFoundError:
        raise CheckpointError(f"no Hugging Face model {repo!r} (or it is private and needs `hf auth login`)") from None
    except hf_errors.GatedRepoError:
        raise CheckpointError(f"Hugging Face model {repo!r} is gated: accept its terms on the Hub and log in") from None
    except hf_errors.RevisionNotFoundError:
        raise CheckpointError(f"Hugging Face model {repo!r} has no revision {revision!r}") from None
    except hf_errors.RemoteEntryNotFoundError:
        raise CheckpointError(f"Hugging Face model {repo!r} has no config.json: not a transformers model folder") from None
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled):
        raise CheckpointError(offline_message(repo, why)) from None
    except (hf_errors.HfHubHTTPError, OSError) as exc:
        raise CheckpointError(f"Hugging Face model {repo!r}: download failed ({type(exc).__name__}: "
                              f"{str(exc)[:300]}); run the same command again, or pass a local folder") from None
    if weights is None:
        if isinstance(missing, hf_errors.LocalEntryNotFoundError):
            raise CheckpointError(offline_message(repo, why))
        raise CheckpointError(f"Hugging Face model {repo!r} has neither {' nor '.join(WEIGHT_FILES)}")
    return weights


def cached_weights(repo: str, revision: str | None = None) -> Path | None:
    """The cached weights file of ``repo`` without asking the Hub, or None."""
    try:
        return model_weights(repo, revision, download=False)
    except CheckpointError:
        return None


def snapshot_revision(weights: Path) -> str | None:
    """The commit a cached Hub file belongs to (``.../snapshots/<commit>/<file>``)."""
    parent = weights.parent
    return parent.name if parent.parent.name == "snapshots" else None
