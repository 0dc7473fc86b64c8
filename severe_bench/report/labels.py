"""Point labels that never overlap each other or another point: greedy placement over candidate positions.

Each label tries positions around its point on rings of growing radius (eight directions per ring), in display
coordinates, and takes the first whose box stays inside the axes and clears every point marker and every label
already placed; crowded points choose first. A label set away from its point gets a thin leader line. This is
deterministic and fast (a few hundred box tests per label) and needs the figure's final layout, so the figure
is drawn once and its layout frozen before placing.
"""

from __future__ import annotations

import numpy as np
from matplotlib.transforms import Bbox

# (dx, dy, ha, va): right, upper right, up, upper left, left, lower left, down, lower right
_DIRECTIONS = [(1, 0, "left", "center"), (0.71, 0.71, "left", "bottom"), (0, 1, "center", "bottom"),
               (-0.71, 0.71, "right", "bottom"), (-1, 0, "right", "center"), (-0.71, -0.71, "right", "top"),
               (0, -1, "center", "top"), (0.71, -0.71, "left", "top")]
_RADII_PT = (2.5, 5, 8, 12, 17, 23, 30, 38, 48)  # ring radii in points (scaled to the figure's dpi)
_LEADER_FROM_PT = 4.0  # labels farther than this from their point get a leader line


def _box(anchor, size, ha: str, va: str) -> tuple[float, float, float, float]:
    (x, y), (w, h) = anchor, size
    x0 = x if ha == "left" else x - w if ha == "right" else x - w / 2
    y0 = y if va == "bottom" else y - h if va == "top" else y - h / 2
    return x0, y0, x0 + w, y0 + h


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(ax, xs, ys, labels, marker_radius_pt: float = 3.0, pad_pt: float = 1.0, **text_kw) -> list:
    """Add one text per point (data coordinates ``xs``, ``ys``) placed clear of the others; returns the texts.

    Call it once the figure's layout is final (``fig.draw_without_rendering()``, then a fixed layout engine):
    positions are computed in display space."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72.0
    pts = ax.transData.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)]))
    frame = ax.get_window_extent(renderer)
    area = (frame.x0 + 1, frame.y0 + 1, frame.x1 - 1, frame.y1 - 1)
    r_mark, pad = marker_radius_pt * scale, pad_pt * scale
    markers = [(x - r_mark, y - r_mark, x + r_mark, y + r_mark) for x, y in pts]
    texts = [ax.text(x, y, str(lab), **text_kw) for x, y, lab in zip(xs, ys, labels)]
    sizes = []
    for t in texts:
        bb = t.get_window_extent(renderer)
        sizes.append((bb.width + 2 * pad, bb.height + 2 * pad))
    # crowded points first: they have the fewest free spots
    crowd = [sum(np.hypot(*(pts[i] - pts[j])) < 40 * scale for j in range(len(pts))) for i in range(len(pts))]
    placed: list[tuple] = []
    to_data = ax.transData.inverted()
    for i in sorted(range(len(texts)), key=lambda k: (-crowd[k], k)):
        best, best_cost = None, None
        for radius in _RADII_PT:
            for dx, dy, ha, va in _DIRECTIONS:
                r = r_mark + radius * scale
                anchor = (pts[i][0] + dx * r, pts[i][1] + dy * r)
                box = _box(anchor, sizes[i], ha, va)
                outside = (max(0, area[0] - box[0]) + max(0, box[2] - area[2])
                           + max(0, area[1] - box[1]) + max(0, box[3] - area[3]))
                hits = sum(_overlap(box, m) for j, m in enumerate(markers) if j != i)
                hits += sum(_overlap(box, p) for p in placed)
                cost = hits + 50 * outside * max(sizes[i])
                if best_cost is None or cost < best_cost - 1e-9:
                    best, best_cost = (anchor, ha, va, box, radius), cost
                if cost == 0:
                    break
            if best_cost == 0:
                break
        anchor, ha, va, box, radius = best
        placed.append(box)
        # the text itself sits inside the padded box
        ax_anchor = (anchor[0] + (pad if ha == "left" else -pad if ha == "right" else 0),
                     anchor[1] + (pad if va == "bottom" else -pad if va == "top" else 0))
        texts[i].set_position(to_data.transform(ax_anchor))
        texts[i].set_ha(ha)
        texts[i].set_va(va)
        if radius > _LEADER_FROM_PT:
            # from the marker's edge to the nearest point of the label's box
            near = (min(max(pts[i][0], box[0]), box[2]), min(max(pts[i][1], box[1]), box[3]))
            vec = np.subtract(near, pts[i])
            start = pts[i] + vec / (np.hypot(*vec) or 1) * r_mark
            line = np.vstack([start, near])
            ax.plot(*to_data.transform(line).T, color="#A6A6A6", lw=0.4, zorder=2, solid_capstyle="butt")
    return texts


def label_boxes(ax, texts) -> list[Bbox]:
    """Display-space boxes of ``texts`` (for checks)."""
    renderer = ax.figure.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in texts]
