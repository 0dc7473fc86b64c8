"""Shared bits of the synthetic dataset generators: sizes, seeding, file writing."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

FRAME_H, FRAME_W = 64, 80  # even sizes (yuv420p), 4:3-ish landscape like UCF101's 320x240


def video_rng(seed: int, dataset: str, *keys) -> np.random.Generator:
    """Independent, reproducible stream per (seed, dataset, video): the same video whatever else is generated."""
    words = [int(seed) & 0xFFFFFFFF, zlib.crc32(dataset.encode())]
    for k in keys:
        words.append(zlib.crc32(str(k).encode()))
    return np.random.default_rng(words)


def ucf_video_name(cls: str, group: int, clip: int) -> str:
    return f"v_{cls}_g{group:02d}_c{clip:02d}"


def write_lines(path: Path, lines, newline: str = "\n") -> None:
    """Write text lines; ``newline="\\r\\n"`` reproduces the DOS line ends of the official UCF101 lists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        for line in lines:
            f.write(line + newline)


def smoothstep(u):
    """Ease-in/out progress 0 -> 1 (natural-looking accelerations)."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)
