"""``synth_multilabel``: multi-label event videos in the Charades layout.

Each video is a static "room" (textured background with a few muted furniture blocks) in which each of six
independent events happens or not (probability 0.4 each; every tenth video, and a few more by chance, has
none) during its own time segment. A class is the presence of its event; several may overlap in time:

====  ==============================  ====================================================
c000  Red disc moving sideways        a red disc crosses part of the room, left or right
c001  Green square falling            a green square moves down
c002  Blue bar spinning               a blue bar turns in place
c003  Yellow triangle rising          a yellow triangle moves up
c004  White disc blinking             a white disc flashes on and off
c005  Orange square growing           an orange square grows from small to large
====  ==============================  ====================================================

Files as in Charades v1: ``Charades_v1_{train,test}.csv`` with all official columns (``actions`` is
``c001 0.50 2.30;c004 1.10 3.00``, empty when nothing happens; ``script``/``descriptions`` contain commas and
are quoted), ``Charades_v1_classes.txt`` (``c000 Red disc moving sideways``), videos
``Charades_v1_480/<id>.mp4``.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .common import FRAME_H, FRAME_W, video_rng, write_lines
from .encode import write_video
from .render import PALETTE, Canvas, paint, to_uint8

NAME = "synth_multilabel"
FORMAT = "charades"
FPS = 16
CLASSES = [
    "Red disc moving sideways",
    "Green square falling",
    "Blue bar spinning",
    "Yellow triangle rising",
    "White disc blinking",
    "Orange square growing",
]
CLASS_IDS = [f"c{i:03d}" for i in range(len(CLASSES))]
COLUMNS = ["id", "subject", "scene", "quality", "relevance", "verified", "script", "objects", "descriptions",
           "actions", "length"]
P_EVENT = 0.4
SCENES = ["Kitchen", "Living room", "Bedroom", "Bathroom", "Hallway", "Home Office", "Garage",
          "Closet / Walk-in closet / Spear closet"]
_OBJECTS = ["disc", "square", "bar", "triangle", "disc", "square"]
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def _room(rng: np.random.Generator, canvas: Canvas) -> np.ndarray:
    grey = rng.uniform(70, 150)
    bg = canvas.background(rng, base=grey + rng.uniform(-15, 15, 3), contrast=35, blobs=2)
    for _ in range(int(rng.integers(1, 4))):  # furniture: muted brown/grey blocks
        colour = np.array([120, 95, 70]) * rng.uniform(0.6, 1.2) if rng.random() < 0.6 else np.full(3, rng.uniform(60, 180))
        m = canvas.rect(rng.uniform(0, FRAME_W), rng.uniform(FRAME_H * 0.5, FRAME_H), rng.uniform(6, 16),
                        rng.uniform(4, 10), 0.0)
        bg = paint(bg, m, colour)
    return bg


def _plan_events(rng: np.random.Generator, length_s: float, empty: bool):
    """List of (class index, start s, end s, event rng) with 2-decimal times."""
    events = []
    for c in range(len(CLASSES)):
        present = rng.random() < P_EVENT
        ev_rng = np.random.default_rng(rng.integers(2**63))
        dur = rng.uniform(1.0, min(3.0, length_s))
        start = rng.uniform(0.0, length_s - dur)
        if present and not empty:
            events.append((c, round(start, 2), round(start + dur, 2), ev_rng))
    return events


def _draw_event(canvas: Canvas, img, c: int, u: float, t_frame: int, p: dict):
    """Event ``c`` at progress ``u`` in [0, 1] with parameters ``p``."""
    if c == 0:
        return paint(img, canvas.disc(p["x0"] + (p["x1"] - p["x0"]) * u, p["y"], 5.0), PALETTE["red"])
    if c == 1:
        return paint(img, canvas.shape("square", p["x"], p["y0"] + p["d"] * u, 5.0, 0.0), PALETTE["green"])
    if c == 2:
        return paint(img, canvas.shape("bar", p["x"], p["y"], 8.0, p["a0"] + p["turns"] * 2 * math.pi * u),
                     PALETTE["blue"])
    if c == 3:
        return paint(img, canvas.shape("triangle", p["x"], p["y0"] - p["d"] * u, 5.5, -math.pi / 2),
                     PALETTE["yellow"])
    if c == 4:
        return paint(img, canvas.disc(p["x"], p["y"], 5.0), PALETTE["white"]) if (t_frame // 3) % 2 == 0 else img
    if c == 5:
        return paint(img, canvas.shape("square", p["x"], p["y"], 3.0 + 8.0 * u, 0.0), PALETTE["orange"])
    raise ValueError(c)


def _event_params(c: int, rng: np.random.Generator) -> dict:
    W, H = FRAME_W, FRAME_H
    if c == 0:
        d = rng.uniform(30, 55)
        x0 = rng.uniform(8, W - 8 - d)
        return {"x0": x0, "x1": x0 + d, "y": rng.uniform(10, H - 10)} if rng.random() < 0.5 else \
            {"x0": x0 + d, "x1": x0, "y": rng.uniform(10, H - 10)}
    if c in (1, 3):
        d = rng.uniform(25, 40)
        y0 = rng.uniform(8, H - 8 - d)
        return {"x": rng.uniform(8, W - 8), "y0": y0 if c == 1 else y0 + d, "d": d}
    if c == 2:
        return {"x": rng.uniform(14, W - 14), "y": rng.uniform(14, H - 14), "a0": rng.uniform(0, math.pi),
                "turns": rng.uniform(1.0, 2.0) * (1 if rng.random() < 0.5 else -1)}
    return {"x": rng.uniform(14, W - 14), "y": rng.uniform(14, H - 14)}


def render_clip(rng: np.random.Generator, n: int, events) -> np.ndarray:
    canvas = Canvas(FRAME_H, FRAME_W)
    bg = _room(rng, canvas)
    params = [(c, s, e, _event_params(c, ev_rng)) for c, s, e, ev_rng in events]
    frames = []
    for i in range(n):
        t = i / FPS
        img = bg
        for c, s, e, p in params:
            if s <= t <= e:
                img = _draw_event(canvas, img, c, (t - s) / max(e - s, 1e-6), i, p)
        frames.append(img)
    return to_uint8(np.stack(frames))


def _texts(rng: np.random.Generator, scene: str, events) -> tuple[str, str, str]:
    names = [CLASSES[c].lower() for c, *_ in sorted(events, key=lambda e: e[1])]
    if names:
        script = (f"A person stands in the {scene.lower()}, watching: first a " + ", then a ".join(names)
                  + ". Finally, they leave.")
        descriptions = ";".join([f"In the {scene.lower()}, a " + ", and a ".join(names) + "."] +
                                [f"Someone sees a {n}, then looks away." for n in names[:1]])
    else:
        script = f"A person sits in the {scene.lower()}, doing nothing in particular, then stands up."
        descriptions = f"The {scene.lower()} stays quiet, nothing moves."
    objects = {_OBJECTS[c] for c, *_ in events}
    if rng.random() < 0.5:
        objects.add("chair")
    return script, ";".join(sorted(objects)), descriptions


def generate(root: Path, seed: int, cfg: dict) -> dict:
    """cfg: train, test (videos), frames=(lo, hi)."""
    root = Path(root)
    lo, hi = cfg.get("frames", (56, 72))
    id_rng = video_rng(seed, NAME, "ids")
    total = cfg["train"] + cfg["test"]
    ids: list[str] = []
    while len(ids) < total:
        vid = "".join(id_rng.choice(list(_ID_ALPHABET), 5))
        if vid not in ids:
            ids.append(vid)
    rows = {"train": [], "test": []}
    positives = np.zeros(len(CLASSES), dtype=int)
    empty_videos = 0
    for k, vid in enumerate(ids):
        split = "train" if k < cfg["train"] else "test"
        rng = video_rng(seed, NAME, vid)
        n = int(rng.integers(lo, hi + 1))
        length = n / FPS
        events = _plan_events(rng, length, empty=(k % 10 == 3))
        write_video(root / "Charades_v1_480" / f"{vid}.mp4", render_clip(rng, n, events), FPS)
        scene = SCENES[int(rng.integers(len(SCENES)))]
        script, objects, descriptions = _texts(rng, scene, events)
        actions = ";".join(f"{CLASS_IDS[c]} {s:.2f} {e:.2f}" for c, s, e, _ in sorted(events, key=lambda x: x[1]))
        for c, *_ in events:
            positives[c] += 1
        empty_videos += not events
        rows[split].append({
            "id": vid,
            "subject": "".join(rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), 2)) + f"{int(rng.integers(10, 99))}",
            "scene": scene,
            "quality": "" if rng.random() < 0.1 else str(int(rng.integers(1, 8))),
            "relevance": "" if rng.random() < 0.1 else str(int(rng.integers(1, 8))),
            "verified": "Yes" if rng.random() < 0.8 else "No",
            "script": script,
            "objects": objects,
            "descriptions": descriptions,
            "actions": actions,
            "length": f"{length:.2f}",
        })
    for split, data in rows.items():
        path = root / f"Charades_v1_{split}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(data)
    write_lines(root / "Charades_v1_classes.txt", [f"{cid} {name}" for cid, name in zip(CLASS_IDS, CLASSES)])
    return {
        "format": FORMAT,
        "classes": CLASSES,
        "num_classes": len(CLASSES),
        "splits": {"train": len(rows["train"]), "test": len(rows["test"])},
        "videos": total,
        "positives_per_class": positives.tolist(),
        "videos_without_actions": int(empty_videos),
        "video_dir": "Charades_v1_480",
        "video_ext": ".mp4",
        "codec": "libx264",
        "fps": FPS,
        "frame_size": [FRAME_H, FRAME_W],
        "files": {"train": "Charades_v1_train.csv", "test": "Charades_v1_test.csv",
                  "classes": "Charades_v1_classes.txt"},
    }
