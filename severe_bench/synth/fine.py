"""``synth_fine``: fine-grained "gymnastics" in the FineGym (Gym99) layout.

One actor (a red body bar with a white head) in one arena (the same background for the whole dataset, only
its brightness varies a little per clip). Labels 0-3 are *coarse* elements that differ in scene and motion;
labels 4-13 (``FINE_LABELS``) are *fine* elements, all "stand, jump, land" on the floor, that differ only in
the number of jumps and the rotation per jump, the way FineGym's FX-S1 differs in turns and saltos. A
FX-S1-like task keeps labels 4..13 and re-indexes them by -4.

Clip names follow FineGym: ``<youtube id>_E_<event start>_<event end>_A_<sub start>_<sub end>`` with several
sub-action clips per event, and the lists ``annotations/gym99_{train,val}.txt`` hold ``<clip name> <label>``
(a few names carry a trailing ``.avi``, as some distributed copies do). Clips are ``subactions/<name>.mp4``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .common import FRAME_H, FRAME_W, video_rng, write_lines
from .encode import write_video
from .render import PALETTE, Canvas, paint, to_uint8

NAME = "synth_fine"
FORMAT = "finegym"
FPS = 25
HOPS = (1, 2)
ROTATIONS = (0, 180, 360, 540, 720)  # degrees per jump
COARSE = [
    "(VT) sprint and leap",
    "(UB) giant swing",
    "(BB) walk along the beam",
    "(FX) forward roll",
]
FINE = [f"(FX) {'single' if h == 1 else 'double'} jump, " + (f"{r / 360:g} salto each" if r else "no salto")
        for h in HOPS for r in ROTATIONS]
CLASSES = COARSE + FINE
FINE_LABELS = list(range(len(COARSE), len(CLASSES)))  # 4..13
SETS = {0: 1, 1: 2, 2: 3, 3: 4}  # coarse label -> set id; every fine label is set 5 (the "FX-S1" of this suite)

BODY_HALF = 8.0  # half-length of the body bar
FLOOR_Y = FRAME_H - 7.0
BAR_Y, BEAM_Y = 14.0, 44.0
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _arena(seed: int, canvas: Canvas) -> np.ndarray:
    rng = video_rng(seed, NAME, "arena")
    bg = canvas.background(rng, base=(70, 90, 150), contrast=30, blobs=4)
    floor = np.clip(canvas.yy - FLOOR_Y, 0, 1)[..., None]
    return bg * (1 - floor) + np.array([150, 120, 90], np.float32) * floor  # a brown floor band


def _actor(canvas: Canvas, img, cx, cy, angle):
    """Body bar centred at (cx, cy) pointing along ``angle`` (head end); -pi/2 is upright."""
    img = paint(img, canvas.rect(cx, cy, BODY_HALF, 2.6, angle), PALETTE["red"])
    hx, hy = cx + (BODY_HALF + 2.5) * math.cos(angle), cy + (BODY_HALF + 2.5) * math.sin(angle)
    return paint(img, canvas.disc(hx, hy, 3.4), PALETTE["white"])


def _fine_motion(label: int, n: int, rng: np.random.Generator):
    """Per-frame (cx, cy, angle) for stand -> jump(s) with rotation -> land."""
    idx = label - len(COARSE)
    hops, rot = HOPS[idx // len(ROTATIONS)], math.radians(ROTATIONS[idx % len(ROTATIONS)])
    direction = 1 if rng.random() < 0.5 else -1
    pre, pause = int(rng.integers(2, 6)), int(rng.integers(3, 6))
    flight = int(min(rng.integers(10, 15), (n - pre - pause * (hops - 1) - 2) // hops))
    height = rng.uniform(0.28, 0.4) * FRAME_H
    x0 = rng.uniform(22, FRAME_W - 22)
    drift = rng.uniform(-4, 4)
    stand_y = FLOOR_Y - BODY_HALF - 1
    cx, cy, ang = np.full(n, x0), np.full(n, stand_y), np.full(n, -math.pi / 2)
    t0, angle = pre, -math.pi / 2
    for h in range(hops):
        for k in range(flight + 1):
            u = k / flight
            t = t0 + k
            cx[t] = x0 + drift * (h + u) / hops
            cy[t] = stand_y - height * 4 * u * (1 - u)
            ang[t] = angle + direction * rot * u
        angle += direction * rot
        end = t0 + flight
        cx[end:], cy[end:], ang[end:] = cx[end], stand_y, angle
        t0 = end + pause
    return cx, cy, ang


def _coarse_frames(label: int, n: int, rng: np.random.Generator, canvas: Canvas, bg):
    u = np.linspace(0, 1, n)
    stand_y = FLOOR_Y - BODY_HALF - 1
    frames = []
    if label == 1:  # bars: a full giant swing around a high bar
        bg = paint(bg, canvas.rect(FRAME_W / 2, BAR_Y, FRAME_W * 0.35, 1.2, 0.0), (200, 200, 200))
        pivot_x = FRAME_W / 2 + rng.uniform(-6, 6)
        start, turns = rng.uniform(0, 2 * math.pi), rng.uniform(0.9, 1.3) * (1 if rng.random() < 0.5 else -1)
    if label == 2:  # beam: a long beam at mid height
        bg = paint(bg, canvas.rect(FRAME_W / 2, BEAM_Y + 2.5, FRAME_W * 0.45, 1.5, 0.0), (230, 210, 170))
        x0, dist = rng.uniform(20, FRAME_W - 20), rng.uniform(8, 14) * (1 if rng.random() < 0.5 else -1)
    if label == 0:
        x_from, x_to = (8.0, FRAME_W - 8.0) if rng.random() < 0.5 else (FRAME_W - 8.0, 8.0)
        leap_at = rng.uniform(0.4, 0.6)
    if label == 3:
        x0, dist = rng.uniform(25, FRAME_W - 25), rng.uniform(14, 22) * (1 if rng.random() < 0.5 else -1)
        roll = rng.uniform(2 * math.pi, 3 * math.pi)
    for i in range(n):
        if label == 0:
            hop = max(0.0, 1 - abs(u[i] - leap_at) / 0.15)
            cx, cy = x_from + (x_to - x_from) * u[i], stand_y - 10 * hop * (2 - hop)
            angle = -math.pi / 2 + (0.5 if x_to > x_from else -0.5)  # leaning into the run
        elif label == 1:
            theta = start + 2 * math.pi * turns * u[i]
            cx, cy = pivot_x + (BODY_HALF + 1) * math.cos(theta), BAR_Y + (BODY_HALF + 1) * math.sin(theta)
            angle = theta + math.pi  # head towards the bar
        elif label == 2:
            cx, cy = x0 + dist * u[i], BEAM_Y - BODY_HALF - abs(math.sin(6 * math.pi * u[i])) * 1.5
            angle = -math.pi / 2
        else:
            cx, cy = x0 + dist * u[i], FLOOR_Y - 4.5
            angle = -math.pi / 2 + math.copysign(roll, dist) * u[i]
        frames.append(_actor(canvas, bg, cx, cy, angle))
    return frames


def render_clip(label: int, seed: int, rng: np.random.Generator, n: int) -> np.ndarray:
    canvas = Canvas(FRAME_H, FRAME_W)
    bg = _arena(seed, canvas) * rng.uniform(0.9, 1.1)
    if label in FINE_LABELS:
        cx, cy, ang = _fine_motion(label, n, rng)
        frames = [_actor(canvas, bg, cx[t], cy[t], ang[t]) for t in range(n)]
    else:
        frames = _coarse_frames(label, n, rng, canvas, bg)
    return to_uint8(np.stack(frames))


def _clip_names(rng: np.random.Generator, count: int) -> list[str]:
    """FineGym-style names: events of a few YouTube videos, 1-4 sub-actions per event."""
    names: list[str] = []
    while len(names) < count:
        ytid = "".join(rng.choice(list(_ALPHABET), 11))
        for _ in range(int(rng.integers(1, 4))):  # events in this video
            ev_start = int(rng.integers(0, 9000))
            ev_end = ev_start + int(rng.integers(25, 90))
            cursor = int(rng.integers(0, 4))
            for _ in range(int(rng.integers(1, 5))):  # sub-actions in this event
                sub_end = cursor + int(rng.integers(1, 4))
                if sub_end > ev_end - ev_start:
                    break
                names.append(f"{ytid}_E_{ev_start:06d}_{ev_end:06d}_A_{cursor:04d}_{sub_end:04d}")
                cursor = sub_end + int(rng.integers(1, 5))
    return names[:count]


def generate(root: Path, seed: int, cfg: dict) -> dict:
    """cfg: fine_train, fine_val, coarse_train, coarse_val (clips per class), frames=(lo, hi)."""
    root = Path(root)
    lo, hi = cfg.get("frames", (34, 40))
    plan = []  # (split, label)
    for label in range(len(CLASSES)):
        fine = label in FINE_LABELS
        plan += [("train", label)] * cfg["fine_train" if fine else "coarse_train"]
        plan += [("val", label)] * cfg["fine_val" if fine else "coarse_val"]
    order_rng = video_rng(seed, NAME, "names")
    names = _clip_names(order_rng, len(plan))
    perm = order_rng.permutation(len(plan))  # clips of one event get unrelated labels, as in real events
    lines = {"train": [], "val": []}
    for k, j in enumerate(perm):
        split, label = plan[j]
        name = names[k]
        rng = video_rng(seed, NAME, "clip", name)
        n = int(rng.integers(lo, hi + 1))
        write_video(root / "subactions" / f"{name}.mp4", render_clip(label, seed, rng, n), FPS)
        listed = f"{name}.avi" if k % 7 == 3 else name  # some distributed copies append ".avi"
        lines[split].append(f"{listed} {label}")
    ann = root / "annotations"
    write_lines(ann / "gym99_train.txt", lines["train"])
    write_lines(ann / "gym99_val.txt", lines["val"])
    write_lines(ann / "gym99_categories.txt",
                [f"Clabel: {i}; set: {SETS.get(i, 5)}; Glabel: {i}; {name}" for i, name in enumerate(CLASSES)])
    return {
        "format": FORMAT,
        "classes": CLASSES,
        "num_classes": len(CLASSES),
        "fine_labels": [FINE_LABELS[0], FINE_LABELS[-1]],
        "splits": {"train": len(lines["train"]), "test": len(lines["val"])},
        "videos": len(plan),
        "video_dir": "subactions",
        "video_ext": ".mp4",
        "codec": "libx264",
        "fps": FPS,
        "frame_size": [FRAME_H, FRAME_W],
        "files": {"train": "annotations/gym99_train.txt", "test": "annotations/gym99_val.txt",
                  "classes": "annotations/gym99_categories.txt"},
    }
