"""Tiny numpy rasteriser for the synthetic videos: soft-edged discs and convex polygons on a background."""

from __future__ import annotations

import math

import numpy as np

# a palette of clearly distinct, saturated colours (RGB)
PALETTE = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 80, 230),
    "yellow": (235, 210, 40),
    "magenta": (210, 50, 200),
    "cyan": (40, 200, 210),
    "orange": (245, 140, 30),
    "white": (245, 245, 245),
    "purple": (120, 60, 200),
}


class Canvas:
    """Pixel-centre coordinate grids for one frame size; drawing returns new frames (float32 RGB)."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width
        self.yy, self.xx = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5

    # --- coverage masks in [0, 1] (1-pixel soft edge, so motion is smooth after encoding) ---
    def disc(self, cx, cy, r):
        d = np.sqrt((self.xx - cx) ** 2 + (self.yy - cy) ** 2) - r
        return np.clip(0.5 - d, 0.0, 1.0)

    def ring(self, cx, cy, r, thickness):
        d = np.abs(np.sqrt((self.xx - cx) ** 2 + (self.yy - cy) ** 2) - r) - thickness / 2
        return np.clip(0.5 - d, 0.0, 1.0)

    def polygon(self, vertices):
        """Convex polygon, vertices in counter-clockwise or clockwise order."""
        v = np.asarray(vertices, dtype=np.float32)
        area = np.sum(v[:, 0] * np.roll(v[:, 1], -1) - np.roll(v[:, 0], -1) * v[:, 1])
        if area < 0:
            v = v[::-1]
        d = np.full(self.xx.shape, -np.inf, dtype=np.float32)
        for (x0, y0), (x1, y1) in zip(v, np.roll(v, -1, axis=0)):
            ex, ey = x1 - x0, y1 - y0
            norm = math.hypot(ex, ey) or 1.0
            # signed distance to the edge line, positive outside (image y points down)
            d = np.maximum(d, ((self.xx - x0) * ey - (self.yy - y0) * ex) / norm)
        return np.clip(0.5 - d, 0.0, 1.0)

    def rect(self, cx, cy, half_w, half_h, angle):
        c, s = math.cos(angle), math.sin(angle)
        corners = [(-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h)]
        return self.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in corners])

    def regular(self, cx, cy, r, sides, angle):
        return self.polygon([(cx + r * math.cos(angle + 2 * math.pi * k / sides),
                              cy + r * math.sin(angle + 2 * math.pi * k / sides)) for k in range(sides)])

    def shape(self, kind, cx, cy, size, angle=0.0):
        """A named shape of 'radius' ``size``: disc, square, triangle, pentagon, bar (elongated rectangle)."""
        if kind == "disc":
            return self.disc(cx, cy, size)
        if kind == "square":
            return self.rect(cx, cy, size * 0.85, size * 0.85, angle)
        if kind == "triangle":
            return self.regular(cx, cy, size * 1.15, 3, angle)
        if kind == "pentagon":
            return self.regular(cx, cy, size, 5, angle)
        if kind == "bar":
            return self.rect(cx, cy, size * 1.4, size * 0.45, angle)
        raise ValueError(f"unknown shape {kind!r}")

    def background(self, rng: np.random.Generator, base=None, contrast: float = 60.0, blobs: int = 3):
        """A static textured background: a colour gradient, a few faint blobs, mild fixed noise."""
        base = np.asarray(base if base is not None else rng.uniform(30, 200, 3), dtype=np.float32)
        other = np.clip(base + rng.uniform(-contrast, contrast, 3), 0, 255)
        angle = rng.uniform(0, 2 * math.pi)
        ramp = (self.xx * math.cos(angle) + self.yy * math.sin(angle))
        ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
        img = base[None, None, :] * (1 - ramp[..., None]) + other[None, None, :] * ramp[..., None]
        for _ in range(blobs):
            m = self.disc(rng.uniform(0, self.width), rng.uniform(0, self.height),
                          rng.uniform(0.08, 0.25) * min(self.height, self.width))
            img = paint(img, m, np.clip(base + rng.uniform(-40, 40, 3), 0, 255), alpha=0.5)
        img += rng.normal(0, 4.0, img.shape).astype(np.float32)
        return np.clip(img, 0, 255).astype(np.float32)


def paint(img: np.ndarray, mask: np.ndarray, colour, alpha: float = 1.0) -> np.ndarray:
    """Alpha-composite a flat ``colour`` through ``mask`` onto ``img`` (float32 HxWx3), returning a new image."""
    a = (mask * alpha)[..., None]
    return img * (1 - a) + np.asarray(colour, dtype=np.float32)[None, None, :] * a


def to_uint8(frames) -> np.ndarray:
    return np.clip(np.rint(np.asarray(frames)), 0, 255).astype(np.uint8)


def random_colour(rng: np.random.Generator, exclude=(), avoid=None, min_distance: float = 110.0):
    """A random palette colour (name, rgb), not in ``exclude`` and, given ``avoid`` (e.g. the background's
    mean colour), at least ``min_distance`` away from it in RGB so the shape stays visible."""
    names = [n for n in PALETTE if n not in exclude]
    if avoid is not None:
        far = [n for n in names if np.linalg.norm(np.subtract(PALETTE[n], avoid)) >= min_distance]
        names = far or sorted(names, key=lambda n: -np.linalg.norm(np.subtract(PALETTE[n], avoid)))[:1]
    name = names[int(rng.integers(len(names)))]
    return name, PALETTE[name]
