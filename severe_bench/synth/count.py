"""``synth_count``: repetition counting with known counts, in the UCFRep layout.

Each video holds a short still lead-in, then ``count`` (2-8) cycles of a periodic motion whose cycle length
varies from cycle to cycle (5-12 frames around a per-video mean), then a still tail:

==========  ===========================================================
Bounce      a ball jumps up and lands once per cycle
Swing       a pendulum swings out and back once per cycle
Spin        a bar with a marked end turns one full revolution per cycle
Pulse       a disc swells and shrinks back once per cycle
==========  ===========================================================

Videos are ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` (groups as in UCF101; the first groups go to ``val``).
Annotations are UCFRep's per-video MATLAB files ``annotations/{train,val}/v_<Class>_gXX_cYY.mat`` with a
1x1 struct ``label`` (read as ``loadmat(f)["label"][0, 0]``):

* ``duration`` (1x1): frames in the video;
* ``start_frame`` / ``end_frame`` (1x1): first / last frame of the repeating segment, 1-based (UCFRep
  indexes extracted frames ``image_00001.jpg`` onward);
* ``temporal_bound`` (K x 1 column): cycle boundaries, 1-based, from ``start_frame`` to ``end_frame``;
  cycle k spans ``temporal_bound[k] .. temporal_bound[k+1]``, so the count is ``K - 1``;
* ``offset_next_estimate`` / ``offset_pre_estimate`` (1 x (end-start+1) rows): for each frame of the
  segment, the length in frames of the cycle after / before it (the period the counting model regresses).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from .common import FRAME_H, FRAME_W, ucf_video_name, video_rng
from .encode import write_video
from .render import Canvas, paint, random_colour, to_uint8

NAME = "synth_count"
FORMAT = "ucfrep"
CLASSES = ["Bounce", "Pulse", "Spin", "Swing"]
FPS = 25
COUNT_RANGE = (2, 8)
CYCLE_RANGE = (5, 12)
MAX_CYCLE_FRAMES = 66  # keep videos short: count * mean cycle length <= this


def plan_cycles(rng: np.random.Generator):
    """(lead-in frames, cycle lengths, tail frames)."""
    count = int(rng.integers(COUNT_RANGE[0], COUNT_RANGE[1] + 1))
    hi = max(CYCLE_RANGE[0] + 1, min(CYCLE_RANGE[1], MAX_CYCLE_FRAMES // count))
    mean = rng.uniform(CYCLE_RANGE[0] + 0.5, hi)
    lengths = np.clip(np.rint(mean + rng.uniform(-1.5, 1.5, count)), CYCLE_RANGE[0], CYCLE_RANGE[1]).astype(int)
    return int(rng.integers(2, 7)), lengths, int(rng.integers(2, 7))


def _phase(pre: int, lengths: np.ndarray, n: int) -> np.ndarray:
    """Phase in [0, 1) per frame (0-based): 0 when still, rising linearly through each cycle."""
    phase = np.zeros(n)
    t = pre
    for length in lengths:
        phase[t:t + length] = np.arange(length) / length
        t += length
    return phase


def render_clip(cls: str, rng: np.random.Generator, pre: int, lengths, post: int) -> np.ndarray:
    canvas = Canvas(FRAME_H, FRAME_W)
    n = pre + int(np.sum(lengths)) + post
    bg = canvas.background(rng)
    _, colour = random_colour(rng, avoid=bg.mean(axis=(0, 1)))
    phase = _phase(pre, np.asarray(lengths), n)
    frames = []
    if cls == "Bounce":
        x, ground, r, height = rng.uniform(15, FRAME_W - 15), FRAME_H - 10.0, rng.uniform(4, 7), rng.uniform(18, 30)
        for p in phase:
            frames.append(paint(bg, canvas.disc(x, ground - r - height * math.sin(math.pi * p), r), colour))
    elif cls == "Swing":
        px, py, length = rng.uniform(25, FRAME_W - 25), 8.0, rng.uniform(24, 34)
        amp = rng.uniform(0.5, 0.9) * (1 if rng.random() < 0.5 else -1)
        for p in phase:
            a = math.pi / 2 + amp * math.sin(2 * math.pi * p)
            bx, by = px + length * math.cos(a), py + length * math.sin(a)
            img = paint(bg, canvas.rect((px + bx) / 2, (py + by) / 2, length / 2, 0.8, a), (30, 30, 30))
            frames.append(paint(img, canvas.disc(bx, by, 5.0), colour))
    elif cls == "Spin":
        cx, cy, size = rng.uniform(22, FRAME_W - 22), rng.uniform(22, FRAME_H - 22), rng.uniform(8, 12)
        start, direction = rng.uniform(0, 2 * math.pi), (1 if rng.random() < 0.5 else -1)
        for p in phase:
            a = start + direction * 2 * math.pi * p
            img = paint(bg, canvas.shape("bar", cx, cy, size, a), colour)
            tip = (cx + size * 1.1 * math.cos(a), cy + size * 1.1 * math.sin(a))
            frames.append(paint(img, canvas.disc(*tip, 3.0), (250, 250, 250)))  # marked end: period = 1 turn
    elif cls == "Pulse":
        cx, cy, r0 = rng.uniform(22, FRAME_W - 22), rng.uniform(22, FRAME_H - 22), rng.uniform(5, 8)
        for p in phase:
            frames.append(paint(bg, canvas.disc(cx, cy, r0 * (1 + 0.9 * math.sin(math.pi * p) ** 2)), colour))
    else:
        raise ValueError(cls)
    return to_uint8(np.stack(frames))


def annotation(pre: int, lengths, post: int) -> dict:
    """The UCFRep ``label`` struct for a video with this cycle plan (frame numbers 1-based)."""
    lengths = np.asarray(lengths, dtype=int)
    n = pre + int(lengths.sum()) + post
    start = pre + 1
    bounds = start + np.concatenate([[0], np.cumsum(lengths)])
    end = int(bounds[-1])
    frames = np.arange(start, end + 1)
    # cycle k covers [bounds[k], bounds[k+1]); the next-estimate is the length of the cycle a frame opens,
    # the pre-estimate the length of the cycle it closes (first/last frames take the nearest cycle)
    k_next = np.clip(np.searchsorted(bounds, frames, side="right") - 1, 0, len(lengths) - 1)
    k_pre = np.clip(np.searchsorted(bounds, frames, side="left") - 1, 0, len(lengths) - 1)
    return {
        "duration": np.array([[n]], dtype=np.float64),
        "start_frame": np.array([[start]], dtype=np.float64),
        "end_frame": np.array([[end]], dtype=np.float64),
        "temporal_bound": bounds.astype(np.float64).reshape(-1, 1),
        "offset_next_estimate": lengths[k_next].astype(np.float64).reshape(1, -1),
        "offset_pre_estimate": lengths[k_pre].astype(np.float64).reshape(1, -1),
    }


def write_mat(path: Path, variables: dict) -> None:
    """``scipy.io.savemat`` with a fixed header text (scipy stamps the creation time there), so that the
    same seed gives byte-identical annotation files."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, variables)
    data = bytearray(buf.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, Platform: posix, Created by: severe-bench synth".ljust(116, b" ")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))


def generate(root: Path, seed: int, cfg: dict) -> dict:
    """cfg: val_groups, train_groups, clips_per_group."""
    root = Path(root)
    splits = {"train": 0, "val": 0}
    counts = {}
    for cls in CLASSES:
        for g in range(1, cfg["val_groups"] + cfg["train_groups"] + 1):
            for c in range(1, cfg["clips_per_group"] + 1):
                name = ucf_video_name(cls, g, c)
                rng = video_rng(seed, NAME, name)
                pre, lengths, post = plan_cycles(rng)
                write_video(root / "UCF-101" / cls / f"{name}.avi", render_clip(cls, rng, pre, lengths, post), FPS)
                split = "val" if g <= cfg["val_groups"] else "train"
                write_mat(root / "annotations" / split / f"{name}.mat", {"label": annotation(pre, lengths, post)})
                splits[split] += 1
                counts[name] = len(lengths)
    return {
        "format": FORMAT,
        "classes": CLASSES,
        "splits": {"train": splits["train"], "test": splits["val"]},
        "videos": sum(splits.values()),
        "count_range": [min(counts.values()), max(counts.values())],
        "video_dir": "UCF-101",
        "video_ext": ".avi",
        "codec": "mpeg4",
        "fps": FPS,
        "frame_size": [FRAME_H, FRAME_W],
        "files": {"train": "annotations/train", "test": "annotations/val"},
        "counts": counts,
    }
