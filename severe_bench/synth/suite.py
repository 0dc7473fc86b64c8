"""The synthetic suite: four small datasets of real encoded videos in the official annotation formats.

``generate_suite(out_dir)`` writes ``synth_motion/`` (UCF101 layout), ``synth_fine/`` (FineGym),
``synth_count/`` (UCFRep) and ``synth_multilabel/`` (Charades) and, last, ``SUITE.json``: the manifest
(schema, generator version, seed, scale, per-dataset counts and files, sha256 of every annotation file). A
directory whose manifest matches the request and whose files are all present is complete and is not
regenerated. Everything is a function of (generator version, seed, scale).

``ensure_suite()`` keeps one suite in the cache (``cache_dir()/synth/v<version>``), generated on first use
into a temporary directory and renamed into place, so an interrupted run never leaves a half suite behind.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

from ..provenance import file_sha256
from . import count, fine, motion, multilabel

SYNTH_VERSION = 2  # bump whenever generated content changes
SCHEMA = "severe-bench/synth-suite/v1"
MANIFEST = "SUITE.json"
DEFAULT_SEED = 0
DEFAULT_SCALE = "small"

GENERATORS = {m.NAME: m for m in (motion, fine, count, multilabel)}

# per-dataset generator settings for each scale (videos: tiny 66, small 440, medium ~1200)
SCALES = {
    "tiny": {
        "synth_motion": {"test_groups": 1, "train_groups": 2, "clips_per_group": 1},
        "synth_fine": {"fine_train": 1, "fine_val": 1, "coarse_train": 1, "coarse_val": 1},
        "synth_count": {"val_groups": 1, "train_groups": 1, "clips_per_group": 1},
        "synth_multilabel": {"train": 8, "test": 4},
    },
    "small": {
        "synth_motion": {"test_groups": 3, "train_groups": 7, "clips_per_group": 2},
        "synth_fine": {"fine_train": 10, "fine_val": 4, "coarse_train": 6, "coarse_val": 2},
        "synth_count": {"val_groups": 2, "train_groups": 6, "clips_per_group": 2},
        "synth_multilabel": {"train": 60, "test": 24},
    },
    "medium": {
        "synth_motion": {"test_groups": 3, "train_groups": 12, "clips_per_group": 3},
        "synth_fine": {"fine_train": 30, "fine_val": 8, "coarse_train": 15, "coarse_val": 4},
        "synth_count": {"val_groups": 3, "train_groups": 12, "clips_per_group": 2},
        "synth_multilabel": {"train": 240, "test": 80},
    },
}


def _annotation_files(dataset_dir: Path, video_dir: str) -> list[Path]:
    return sorted(p for p in dataset_dir.rglob("*") if p.is_file() and video_dir not in p.relative_to(dataset_dir).parts)


def _video_files(dataset_dir: Path, entry: dict) -> list[Path]:
    return sorted((dataset_dir / entry["video_dir"]).rglob(f"*{entry['video_ext']}"))


def _check_request(seed, scale):
    if scale not in SCALES:
        raise ValueError(f"unknown synth scale {scale!r} (choose one of: {', '.join(SCALES)})")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def load_manifest(out_dir) -> dict | None:
    """The suite manifest in ``out_dir``, or None if there is none (or it is unreadable)."""
    try:
        return json.loads((Path(out_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def complete_manifest(out_dir, seed: int = DEFAULT_SEED, scale: str = DEFAULT_SCALE) -> dict | None:
    """The manifest if ``out_dir`` holds a complete suite for (current version, seed, scale), else None."""
    out_dir = Path(out_dir)
    manifest = load_manifest(out_dir)
    if not manifest or manifest.get("schema") != SCHEMA or manifest.get("version") != SYNTH_VERSION:
        return None
    if manifest.get("seed") != seed or manifest.get("scale") != scale:
        return None
    if set(manifest.get("datasets", {})) != set(GENERATORS):
        return None
    for rel, digest in manifest.get("annotation_sha256", {}).items():
        p = out_dir / rel
        if not p.is_file() or file_sha256(p) != digest:
            return None
    for name, entry in manifest["datasets"].items():
        if len(_video_files(out_dir / name, entry)) != entry["videos"]:
            return None
    return manifest


def generate_suite(out_dir, seed: int = DEFAULT_SEED, scale: str = DEFAULT_SCALE, force: bool = False) -> dict:
    """Write the suite into ``out_dir`` (skipped if already complete, unless ``force``); returns the manifest."""
    _check_request(seed, scale)
    out_dir = Path(out_dir)
    if not force:
        manifest = complete_manifest(out_dir, seed, scale)
        if manifest is not None:
            return manifest
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)  # no manifest until every file is written
    datasets, hashes = {}, {}
    for name, generator in GENERATORS.items():
        ds_dir = out_dir / name
        if ds_dir.exists():
            shutil.rmtree(ds_dir)
        entry = generator.generate(ds_dir, seed, SCALES[scale][name])
        entry["root"] = name
        datasets[name] = entry
        for p in _annotation_files(ds_dir, entry["video_dir"]):
            hashes[p.relative_to(out_dir).as_posix()] = file_sha256(p)
    manifest = {
        "schema": SCHEMA,
        "version": SYNTH_VERSION,
        "seed": int(seed),
        "scale": scale,
        "datasets": datasets,
        "total_videos": sum(e["videos"] for e in datasets.values()),
        "annotation_sha256": dict(sorted(hashes.items())),
    }
    tmp = out_dir / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out_dir / MANIFEST)
    return manifest


def suite_dir_name(seed: int = DEFAULT_SEED, scale: str = DEFAULT_SCALE) -> str:
    base = f"v{SYNTH_VERSION}"
    return base if (seed, scale) == (DEFAULT_SEED, DEFAULT_SCALE) else f"{base}-seed{seed}-{scale}"


def ensure_suite(cache_root=None, seed: int = DEFAULT_SEED, scale: str = DEFAULT_SCALE) -> Path:
    """Path of a complete suite in the cache, generating it (atomically) on first use.

    ``cache_root`` defaults to ``severe_bench.resources.cache_dir() / "synth"``; the suite lives in
    ``<cache_root>/v<version>`` (other seeds/scales: ``v<version>-seed<N>-<scale>``).
    """
    _check_request(seed, scale)
    if cache_root is None:
        from ..resources import cache_dir

        cache_root = cache_dir() / "synth"
    cache_root = Path(cache_root)
    final = cache_root / suite_dir_name(seed, scale)
    if complete_manifest(final, seed, scale) is not None:
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = cache_root / f".tmp-{final.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        generate_suite(tmp, seed, scale, force=True)
        if final.exists():
            if complete_manifest(final, seed, scale) is not None:  # another process finished first
                return final
            shutil.rmtree(final)  # a stale or damaged suite
        try:
            os.rename(tmp, final)
        except OSError:
            if complete_manifest(final, seed, scale) is None:
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
