"""``synth_motion``: six classes defined by motion alone, in the UCF101 layout.

Every video shows one shape (random kind, colour, size, place) plus a static distractor on a textured
background. The class is *how it moves*, so a single frame cannot tell classes apart; all classes are
invariant to horizontal flips (the training augmentation flips), so none is "left" versus "right":

==================  ==================================================================
MoveUp / MoveDown   translates up / down by 40-60 % of the frame height
MoveSideways        translates left or right (random) by 40-60 % of the frame width
CircleAround        travels ~one turn around a circle (random direction)
Grow / Shrink       stays in place and scales up / down by a factor ~2-3
==================  ==================================================================

Videos come in groups (``gXX``) as in UCF101: a group fixes the scene (background, distractor, shape kind
and colour) and is shared by all classes, so the scene says nothing about the class; clips (``cYY``) differ
in placement, size and speed. Split 1 puts the first groups in the test list and the rest in the train
list, so test scenes are unseen in training.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .common import FRAME_H, FRAME_W, smoothstep, ucf_video_name, video_rng, write_lines
from .encode import write_video
from .render import Canvas, paint, random_colour, to_uint8

NAME = "synth_motion"
FORMAT = "ucf101"
CLASSES = ["CircleAround", "Grow", "MoveDown", "MoveSideways", "MoveUp", "Shrink"]  # sorted, as classInd
FPS = 25
SHAPES = ("disc", "square", "triangle", "pentagon")


def _trajectory(cls: str, n: int, rng: np.random.Generator):
    """Per-frame centre x, y and size of the moving shape."""
    u = np.linspace(0.0, 1.0, n)
    p = 0.5 * (u + smoothstep(u))  # mostly steady speed with soft start/stop
    H, W = FRAME_H, FRAME_W
    if cls in ("Grow", "Shrink"):
        small, large = rng.uniform(3.5, 5.5), rng.uniform(11.0, 14.0)
        m = large + 2
        cx, cy = rng.uniform(m, W - m), rng.uniform(m, H - m)
        size = small + (large - small) * (p if cls == "Grow" else 1 - p)
        return np.full(n, cx), np.full(n, cy), size
    size = np.full(n, rng.uniform(4.0, 12.0))
    m = size[0] + 2
    if cls in ("MoveUp", "MoveDown"):
        d = min(rng.uniform(0.4, 0.6) * H, H - 2 * m)
        cx = np.full(n, rng.uniform(m, W - m))
        top = rng.uniform(m, H - m - d)
        cy = top + d * (p if cls == "MoveDown" else 1 - p)
        return cx, cy, size
    if cls == "MoveSideways":
        d = min(rng.uniform(0.4, 0.6) * W, W - 2 * m)
        left = rng.uniform(m, W - m - d)
        direction = 1 if rng.random() < 0.5 else -1
        cx = left + d * (p if direction > 0 else 1 - p)
        cy = np.full(n, rng.uniform(m, H - m))
        return cx, cy, size
    if cls == "CircleAround":
        r = rng.uniform(0.16, 0.26) * H
        r = min(r, (H - 2 * m) / 2 - 0.5)
        ccx, ccy = rng.uniform(m + r, W - m - r), rng.uniform(m + r, H - m - r)
        theta = rng.uniform(0, 2 * math.pi) + (1 if rng.random() < 0.5 else -1) * 2 * math.pi * rng.uniform(0.8, 1.2) * u
        return ccx + r * np.cos(theta), ccy + r * np.sin(theta), size
    raise ValueError(cls)


def render_clip(cls: str, scene_rng: np.random.Generator, clip_rng: np.random.Generator, n: int) -> np.ndarray:
    canvas = Canvas(FRAME_H, FRAME_W)
    bg = canvas.background(scene_rng)
    kind = SHAPES[int(scene_rng.integers(len(SHAPES)))]
    colour_name, colour = random_colour(scene_rng, avoid=bg.mean(axis=(0, 1)))
    _, distractor_colour = random_colour(scene_rng, exclude=(colour_name,), avoid=bg.mean(axis=(0, 1)))
    distractor = canvas.shape(SHAPES[int(scene_rng.integers(len(SHAPES)))], scene_rng.uniform(8, FRAME_W - 8),
                              scene_rng.uniform(8, FRAME_H - 8), scene_rng.uniform(3, 7), scene_rng.uniform(0, 3))
    bg = paint(bg, distractor, distractor_colour)
    cx, cy, size = _trajectory(cls, n, clip_rng)
    angle = clip_rng.uniform(0, 2 * math.pi)
    frames = np.empty((n, FRAME_H, FRAME_W, 3), dtype=np.float32)
    for t in range(n):
        frames[t] = paint(bg, canvas.shape(kind, cx[t], cy[t], size[t], angle), colour)
    return to_uint8(frames)


def generate(root: Path, seed: int, cfg: dict) -> dict:
    """cfg: test_groups, train_groups, clips_per_group, frames=(lo, hi)."""
    root = Path(root)
    lo, hi = cfg.get("frames", (36, 44))
    train, test = [], []
    n_videos = 0
    for cls in CLASSES:
        for g in range(1, cfg["test_groups"] + cfg["train_groups"] + 1):
            for c in range(1, cfg["clips_per_group"] + 1):
                name = ucf_video_name(cls, g, c)
                scene_rng = video_rng(seed, NAME, "scene", g)  # one scene per group, whatever the class
                clip_rng = video_rng(seed, NAME, "clip", cls, g, c)
                n = int(clip_rng.integers(lo, hi + 1))
                write_video(root / "UCF-101" / cls / f"{name}.avi", render_clip(cls, scene_rng, clip_rng, n), FPS)
                n_videos += 1
                rel = f"{cls}/{name}.avi"
                if g <= cfg["test_groups"]:
                    test.append(rel)  # the official testlist has no label column
                else:
                    train.append(f"{rel} {CLASSES.index(cls) + 1}")
    lists = root / "ucfTrainTestlist"
    write_lines(lists / "classInd.txt", [f"{i + 1} {c}" for i, c in enumerate(CLASSES)], newline="\r\n")
    write_lines(lists / "trainlist01.txt", train, newline="\r\n")
    write_lines(lists / "testlist01.txt", test, newline="\r\n")
    return {
        "format": FORMAT,
        "classes": CLASSES,
        "num_classes": len(CLASSES),
        "splits": {"train": len(train), "test": len(test)},
        "videos": n_videos,
        "video_dir": "UCF-101",
        "video_ext": ".avi",
        "codec": "mpeg4",
        "fps": FPS,
        "frame_size": [FRAME_H, FRAME_W],
        "files": {"class_index": "ucfTrainTestlist/classInd.txt", "train": "ucfTrainTestlist/trainlist01.txt",
                  "test": "ucfTrainTestlist/testlist01.txt"},
    }


__all__ = ["CLASSES", "FORMAT", "NAME", "generate", "render_clip"]
