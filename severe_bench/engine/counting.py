"""Repetition counting on UCFRep (PROTOCOL.md §5): Zhang et al., CVPR 2020, "Context-aware and
Scale-insensitive Temporal Repetition Counting", as the SEVERE benchmark runs it (R(2+1)D-18 backbone).

Method (reference: ``Xiaodomgdomg/Deep-Temporal-Repetition-Counting``, ``train_2stream.py`` /
``val_2stream.py`` / ``utils/myutils.py``, and SEVERE's ``Repetition-Counting`` fork):

* **State and input.** A hypothesis is a position ``m`` (frame) with a cycle length ``a`` ending at ``m`` and
  ``b`` starting after it. The network input is ``frames`` frames: the first half spaced evenly over the
  ``a * (1 + context.left)`` frames ending at ``m`` (the cycle plus one cycle of context), the second half over
  the ``b * context.right`` frames after ``m``. Frames outside the video are a mean-colour pad.
* **Network.** ``backbone.forward_features`` (globally pooled, 512-d for R(2+1)D-18) feeds two heads, one per
  side, each with an anchor classifier (2 logits per anchor) and an offset regressor (1 per anchor), as the
  SEVERE ``Head`` on top of torchvision's ``r2plus1d_18``.
* **Targets.** For a hypothesised length ``w`` and true length ``t`` (from the annotation's per-frame
  ``offset_pre_estimate`` / ``offset_next_estimate`` + 1), anchor ``k`` is positive when
  ``min(t, r_k w) / max(t, r_k w) >= iou_bound`` with regression target ``log(t / (r_k w))``, negative
  otherwise; frames whose true length is unknown (-1) are ignored. Loss: cross-entropy over anchors plus
  ``box_weight`` x smooth-L1 on positive anchors, for both sides.
* **Decoding.** Each side's new length is ``w * r_k * exp(clamp(offset_k))`` for the anchor with the highest
  positive probability.
* **Training.** Each pass draws ``segments_per_video`` random repetition sub-segments per video (whole cycles
  from a random point of one cycle to a random point of a later one, at most ``max_segment_frames`` frames).
  A batch of segments is then *tracked*: a random initial state per segment, then up to
  ``train_tracking.steps`` optimisation steps, after each of which every state moves ``length / U(lo, hi)``
  frames forward and takes the lengths the network just predicted; a state that leaves the segment or
  collapses below ``min_cycle_frames`` restarts. Adam, constant learning rate, the last pass's model is scored.
* **Counting a test video** (its annotated span of ``L`` frames): (1) coarse search at the centre over
  ``scales.num`` lengths ``L * scale`` spaced geometrically in ``[scales.min, scales.max]``, scored by the
  ``test.coarse_anchor`` anchor of the left head; (2) ``test.refine_iters`` refinements blending old and new
  length by ``test.merge.weight``; (3) coarse-to-fine propagation over ``2 ** merge.levels`` positions: at
  level ``l`` every ``2 ** (levels - l)``-th position is re-estimated ``merge.iters[l-1]`` times (both sides,
  lengths clipped to ``[min_cycle_frames, L / test.min_cycles)``) and its lengths are copied to its block;
  (4) count = ``L * mean(0.5 / a + 0.5 / b)`` over the positions whose full input window lies inside the
  video (``L / c`` of step 2 if none does), rounded to an integer.
* **Metrics.** ``counting_error`` = mean(|pred - gt| / gt) (lower is better), ``obo_accuracy`` =
  mean(|pred - gt| <= 1), over the test videos that could be decoded.

Simplifications (each recorded as a protocol value where it is one):

* Sub-segments are redrawn every pass (the reference draws them once when the dataset is built).
* States and lengths are real numbers; the reference truncates window ends to whole frames, and its coarse
  search feeds windows one frame longer than the length it then scales (< 1 frame either way).
* The initial-state fallback (a state that would not fit the segment) uses the segment's mean annotated cycle
  length; the reference divides the segment length by a count that it does not correct after the 300-frame cut.
* Coarse search: when no scale gives a length inside the valid range, the best-scoring one is clipped into it
  (the reference then keeps a 0-frame length).
* Coarse-to-fine: each refined position overwrites both neighbouring half-blocks at every level; the
  reference keeps the previous level's estimate on the far side at one intermediate level and averages the
  two (a small extra smoothing). Intermediate lengths are not rounded to whole frames.

Kept as the reference does it: lengths count frames inclusively (a cycle between boundaries 10 frames apart is
11 frames, the target is offset + 1); frames are scaled so the longer side is ``input.crop`` and padded to a
square (``Scale_longerside`` + ``CenterCrop``, ``spatial: letterbox``) with one random horizontal flip per
training segment and no other augmentation; out-of-video frames are 0 after normalisation (the mean colour);
annotation frame numbers are 1-based (``image_00001.jpg``); the test span is the annotated one
(``start_frame..end_frame``), not the whole video. State (model, optimiser, passes done, unreadable videos,
torch RNG) is saved after every pass; segment and tracking draws are seeded by (seed, pass), so a resumed run
repeats them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from ..errors import ConfigError, SevereError
from ..video.reader import VideoDecodeError, open_video
from ..video.transforms import _ToModelInput
from .context import Outcome, RunContext
from .metrics import counting_metrics
from .predictions import counting_predictions
from .model import build_optimizer
from . import distributed
from .state import loader_kwargs
from .trainer import PassSampler, Precision, fit, make_loader, optimise
from .transforms import norm_kwargs

# UCFRep frame numbers (start_frame, end_frame, temporal_bound) count extracted images from image_00001.jpg:
# frame number f is decoded frame f - 1.
FIRST_FRAME_NUMBER = 1
DECODE_CHUNK = 128  # frames decoded and resized at a time (bounds a worker's memory on long videos)

# (m, a, b) -> (left positive-probabilities (N, K), left offsets (N, K), right probs, right offsets)
Predictor = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple]


# --- protocol values -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class CountingConfig:
    frames: int
    crop: int
    anchors: tuple
    context_left: float
    context_right: float
    iou_bound: float
    segments_per_video: int
    max_segment_frames: int
    batch_size: int
    passes: int
    box_weight: float
    train_steps: int
    step_divisor: tuple
    train_box_clamp: float
    min_cycle_frames: float
    scales: tuple  # (min, max, num)
    coarse_anchor: float
    refine_iters: int
    merge_levels: int
    merge_iters: tuple
    merge_weight: float
    min_cycles: float
    test_box_clamp: float

    @classmethod
    def from_protocol(cls, p: dict) -> "CountingConfig":
        def get(path: str):
            node = p
            for key in path.split("."):
                if not isinstance(node, dict) or key not in node:
                    raise ConfigError(f"counting protocol: missing value {path!r}")
                node = node[key]
            return node

        if get("spatial") != "letterbox":
            raise ConfigError(f"counting protocol: spatial must be 'letterbox' (the reference's only frame "
                              f"transform), got {p.get('spatial')!r}")
        sched = get("schedule")
        if sched.get("kind", "constant") != "constant":
            raise ConfigError(f"counting protocol: only a constant schedule is supported, got {sched.get('kind')!r}")
        cfg = cls(
            frames=int(get("input.frames")), crop=int(get("input.crop")),
            anchors=tuple(float(a) for a in get("anchors")),
            context_left=float(get("context.left")), context_right=float(get("context.right")),
            iou_bound=float(get("iou_bound")), segments_per_video=int(get("segments_per_video")),
            max_segment_frames=int(get("max_segment_frames")), batch_size=int(get("batch_size")),
            passes=int(get("schedule.passes")), box_weight=float(get("loss.box_weight")),
            train_steps=int(get("train_tracking.steps")),
            step_divisor=tuple(float(v) for v in get("train_tracking.step_divisor")),
            train_box_clamp=float(get("train_tracking.box_clamp")),
            min_cycle_frames=float(get("min_cycle_frames")),
            scales=(float(get("scales.min")), float(get("scales.max")), int(get("scales.num"))),
            coarse_anchor=float(get("test.coarse_anchor")), refine_iters=int(get("test.refine_iters")),
            merge_levels=int(get("test.merge.levels")), merge_iters=tuple(int(v) for v in get("test.merge.iters")),
            merge_weight=float(get("test.merge.weight")), min_cycles=float(get("test.min_cycles")),
            test_box_clamp=float(get("test.box_clamp")),
        )
        if cfg.frames < 4 or cfg.frames % 2:
            raise ConfigError(f"counting protocol: input.frames must be even and >= 4, got {cfg.frames}")
        if cfg.coarse_anchor not in cfg.anchors:
            raise ConfigError(f"counting protocol: test.coarse_anchor {cfg.coarse_anchor} is not one of the anchors")
        if len(cfg.merge_iters) != cfg.merge_levels - 1:
            raise ConfigError(f"counting protocol: test.merge.iters needs {cfg.merge_levels - 1} values "
                              f"(one per level 1..levels-1), got {len(cfg.merge_iters)}")
        if len(cfg.step_divisor) != 2 or cfg.scales[2] < 2:
            raise ConfigError("counting protocol: train_tracking.step_divisor is [lo, hi]; scales.num >= 2")
        return cfg

    def scale_grid(self) -> np.ndarray:
        lo, hi, n = self.scales
        return lo * (hi / lo) ** (np.arange(n) / (n - 1))


# --- annotation-derived labels --------------------------------------------------------------------------

def cycle_offsets(bounds, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame distance to the same phase of the next / previous cycle (UCFRep ``offset_next_estimate`` /
    ``offset_pre_estimate``, as ``utils/label_interpolation_v1.m`` derives them from the boundaries), for
    frames ``start..end``. -1 where unknown: no next (last cycle) / previous (first cycle) cycle, or a
    neighbouring cycle whose length differs by more than 2 frames and 30 %."""
    b = np.asarray(bounds, dtype=np.int64)
    n = int(end) - int(start) + 1
    nxt, pre = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)

    def regular(x, y):
        return not (max(x, y) - min(x, y) > 2 and max(x, y) / min(x, y) > 1.3)

    for k in range(len(b) - 1):
        seg = b[k + 1] - b[k]
        if seg <= 0:
            continue
        p = np.arange(b[k], b[k + 1] + 1)
        keep = (p >= start) & (p <= end)
        p = p[keep]
        phase = (p - b[k]) / seg
        # later cycles overwrite the shared boundary frame, as the MATLAB loop does
        nxt[p - start] = -1
        pre[p - start] = -1
        if k + 2 < len(b) and b[k + 2] > b[k + 1] and regular(seg, b[k + 2] - b[k + 1]):
            nxt[p - start] = np.floor(phase * (b[k + 2] - b[k + 1]) + b[k + 1] - p + 0.5)
        if k > 0 and b[k] > b[k - 1] and regular(seg, b[k] - b[k - 1]):
            pre[p - start] = np.floor(p - b[k - 1] - phase * (b[k] - b[k - 1]) + 0.5)
    return nxt, pre


def video_offsets(meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """The annotation's own per-frame offsets when present, else derived from the cycle boundaries."""
    start, end = int(meta["start_frame"]), int(meta["end_frame"])
    n = end - start + 1
    given_next, given_pre = meta.get("offset_next_estimate"), meta.get("offset_pre_estimate")
    if given_next is not None and given_pre is not None and len(given_next) == n and len(given_pre) == n:
        return np.asarray(given_next, dtype=np.int64), np.asarray(given_pre, dtype=np.int64)
    return cycle_offsets(meta["temporal_bound"], start, end)


# --- anchors -------------------------------------------------------------------------------------------

def anchor_targets(true_len, window, anchors, iou_bound: float) -> tuple[np.ndarray, np.ndarray]:
    """Classification (1 positive, 0 negative, -1 ignored) and regression targets per anchor.

    ``true_len`` (N,) is the annotated cycle length (<= 0: unknown), ``window`` (N,) the hypothesised one.
    """
    t = np.asarray(true_len, dtype=np.float64)[:, None]
    ref = np.asarray(window, dtype=np.float64)[:, None] * np.asarray(anchors, dtype=np.float64)[None, :]
    valid = t > 0
    t_safe = np.where(valid, t, 1.0)
    iou = np.minimum(t_safe, ref) / np.maximum(t_safe, ref)
    pos = valid & (iou >= iou_bound)
    cls = np.where(valid, pos.astype(np.int64), -1)
    box = np.where(pos, np.log(t_safe / ref), 0.0)
    return cls, box


def decode_ratio(prob, box, anchors, clamp: float) -> np.ndarray:
    """New length / hypothesised length: anchor with the highest positive probability, its clamped offset."""
    prob, box = np.asarray(prob, dtype=np.float64), np.asarray(box, dtype=np.float64)
    k = prob.argmax(1)
    off = np.clip(box[np.arange(len(k)), k], -clamp, clamp)
    return np.asarray(anchors, dtype=np.float64)[k] * np.exp(off)


def window_indices(m, a, b, frames: int, left: float, right: float) -> np.ndarray:
    """(N, frames) frame indices of the network input for states (m, a, b); may fall outside the video.

    First half: ``a * (1 + left)`` frames ending at ``m``; second half: ``b * right`` frames after ``m``,
    spaced as the reference ``update_inputs_2stream`` does."""
    half = frames // 2
    m = np.asarray(m, dtype=np.float64)[:, None]
    a = np.asarray(a, dtype=np.float64)[:, None]
    b = np.asarray(b, dtype=np.float64)[:, None]
    j = np.arange(half)[None, :]

    def spread(s, e):
        s, e = np.floor(s), np.floor(e)
        steps = (e - s + 1) / (half - 1)
        return np.clip(np.round(s - 0.5 + j * steps), s, e)

    left_idx = spread(m - a * (1 + left) + 1, m)
    right_idx = spread(m + 1, m + b * right)
    return np.concatenate([left_idx, right_idx], axis=1).astype(np.int64)


# --- counting one video --------------------------------------------------------------------------------

def estimate_count(predict: Predictor, length: int, cfg: CountingConfig) -> dict:
    """Count the repetitions in ``length`` frames with a cycle-length predictor (coarse search, refinement,
    coarse-to-fine propagation; see the module docstring). Returns ``{"count", "cycle", "used_positions"}``."""
    L = int(length)
    anchors = np.asarray(cfg.anchors)
    unit = int(np.flatnonzero(anchors == cfg.coarse_anchor)[0])
    lo, hi = cfg.min_cycle_frames, L / cfg.min_cycles
    w = cfg.merge_weight

    def in_range(x):
        return (x >= lo) & (x < hi)

    # 1. coarse search over scales at the centre, scored by the unit anchor of the left head
    mid = L // 2
    lens = L * cfg.scale_grid()
    pl, bl, _, _ = predict(np.full(len(lens), mid), lens, lens)
    est = lens * anchors[unit] * np.exp(np.clip(bl[:, unit], -cfg.test_box_clamp, cfg.test_box_clamp))
    score = np.where(in_range(est), pl[:, unit], -np.inf)
    if np.isfinite(score).any():
        cycle = float(est[int(score.argmax())])
    else:
        cycle = float(np.clip(est[int(pl[:, unit].argmax())], lo, max(lo, np.nextafter(hi, 0))))

    # 2. refinement at the centre
    for _ in range(cfg.refine_iters):
        pl, bl, _, _ = predict(np.array([mid]), np.array([cycle]), np.array([cycle]))
        new = cycle * anchors[unit] * math.exp(float(np.clip(bl[0, unit], -cfg.test_box_clamp, cfg.test_box_clamp)))
        if in_range(new):
            cycle = float(round(cycle * (1 - w) + new * w))

    # 3. coarse-to-fine propagation over 2**levels positions
    n_pos = 2 ** cfg.merge_levels
    pos = (L / (n_pos + 1) * (np.arange(n_pos) + 0.5)).astype(np.int64)
    A, B = np.full(n_pos, cycle), np.full(n_pos, cycle)
    for level in range(1, cfg.merge_levels):
        half = 2 ** (cfg.merge_levels - level - 1)
        points = half * (2 * np.arange(2 ** level) + 1)
        a, b = np.round(A[points]), np.round(B[points])
        for _ in range(cfg.merge_iters[level - 1]):
            pl, bl, pr, br = predict(pos[points], a, b)
            a_new = np.clip(a * decode_ratio(pl, bl, anchors, cfg.test_box_clamp), lo, hi)
            b_new = np.clip(b * decode_ratio(pr, br, anchors, cfg.test_box_clamp), lo, hi)
            a_new, b_new = np.where(a_new < lo, a, a_new), np.where(b_new < lo, b, b_new)  # too short: keep
            a, b = a_new * w + a * (1 - w), b_new * w + b * (1 - w)
        for p, ai, bi in zip(points, a, b):
            A[p - half:p + half], B[p - half:p + half] = ai, bi

    # 4. count from the positions whose whole input window lies in the video
    a, b = np.round(A), np.round(B)
    inside = (pos - a * (1 + cfg.context_left) + 1 >= 0) & (pos + b * cfg.context_right < L)
    if inside.any():
        count = L * float(np.mean(0.5 / a[inside] + 0.5 / b[inside]))
    else:
        count = L / cycle
    return {"count": float(round(count)), "cycle": cycle, "used_positions": int(inside.sum())}


# --- training states -----------------------------------------------------------------------------------

def init_state(rng: np.random.Generator, L: int, first_cycle: float, fallback_cycle: float,
               scales: np.ndarray) -> tuple[int, float]:
    """A random starting hypothesis (m, a) for a training segment of ``L`` frames (reference ``state_init``):
    start somewhere in the first cycle with a length near the true one (x 2^U(-1,1), or x {1/2, 1, 2} +- 5 %)
    or taken from the coarse scale grid. A state whose position ``m`` would leave the segment restarts at 0
    with the segment's mean cycle length; one with ``m`` in the second half restarts at 0 with ``L / 2``.
    The result always satisfies ``m + a < L``."""
    c0 = first_cycle if first_cycle > 0 else fallback_cycle
    lp = math.floor(rng.random() * c0)
    u = rng.random()
    if u < 0.25:
        a = c0 * 2.0 ** rng.uniform(-1, 1)
    elif u > 0.75:
        a = c0 * (2.0 ** int(rng.integers(-1, 2)) + rng.uniform(-0.05, 0.05))
    else:
        a = L * float(scales[int(rng.integers(0, len(scales)))])
    a = max(a, 1.0)
    if lp + a - 1 >= L:
        lp, a = 0, max(fallback_cycle, 1.0)
    if 2 * (lp + a - 1) + 1 >= L:
        lp, a = 0, L / 2
    return int(lp + a - 1), float(a)


def sample_segment(rng: np.random.Generator, bounds, start: int, end: int, max_frames: int):
    """A random repetition sub-segment (reference ``make_dataset``): from a random point of one cycle to a
    random point of a cycle at least two boundaries later, cut to ``max_frames``. Returns (begin, end,
    mean cycle length of the cycles it spans)."""
    bd = np.asarray(bounds, dtype=np.int64)
    nb = len(bd)
    bp = int(rng.integers(0, nb - 2))
    ep = int(rng.integers(bp + 2, nb + 1))
    begin = start if bp == 0 else int(rng.integers(bd[bp - 1], bd[bp] + 1))
    stop = end if ep == nb else int(rng.integers(bd[ep - 1], bd[ep] + 1))
    stop = min(stop, begin + max_frames - 1)
    cycles = np.diff(bd)[max(bp - 1, 0):ep]
    return begin, stop, float(np.mean(cycles))


# --- frames --------------------------------------------------------------------------------------------

def letterbox(frames: np.ndarray, size: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, size, size) uint8: longer side scaled to ``size``, padded to a square
    (the reference ``Scale_longerside`` + ``CenterCrop``)."""
    video = tv_tensors.Video(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2))
    out = v2.Compose([v2.Resize(size=None, max_size=size, antialias=True), v2.CenterCrop(size)])(video)
    return out.as_subclass(torch.Tensor).contiguous()


def read_span(path: Path, begin: int, end: int, size: int, report: dict | None = None) -> torch.Tensor:
    """Frames ``begin..end`` of a video, letterboxed: (T, 3, size, size) uint8. Raises VideoDecodeError.
    ``report["truncated"]`` is set when the video decodes fewer frames than its container declares."""
    parts = []
    with open_video(path) as video:
        for s in range(begin, end + 1, DECODE_CHUNK):
            idx = np.arange(s, min(s + DECODE_CHUNK, end + 1))
            parts.append(letterbox(video.get_frames(idx), size))
        if report is not None and video.truncation():
            report["truncated"] = video.truncation()
    return torch.cat(parts)


def gather_clips(frames: torch.Tensor, lengths: torch.Tensor, idx: np.ndarray, to_input: _ToModelInput) -> torch.Tensor:
    """Model input (N, 3, T, S, S) from frames (Bf, Tmax, 3, S, S) uint8 with one row of ``idx`` (N, T)
    per clip (Bf == N, or Bf == 1 for many clips of one video); out-of-video frames become 0."""
    n = idx.shape[0]
    idx_t = torch.as_tensor(idx, device=frames.device)
    if frames.shape[0] == 1:
        rows = torch.zeros(n, 1, dtype=torch.long, device=frames.device)
        lens = lengths.to(frames.device).expand(n)
    else:
        rows = torch.arange(n, device=frames.device)[:, None]
        lens = lengths.to(frames.device)
    valid = (idx_t >= 0) & (idx_t < lens[:, None])
    safe = torch.minimum(idx_t.clamp(min=0), (lens[:, None] - 1).clamp(min=0))
    x = to_input(frames[rows, safe])  # (N, T, 3, S, S) uint8 -> (N, 3, T, S, S) float, normalised
    return x * valid[:, None, :, None, None]


class SegmentDataset(Dataset):
    """Training sub-segments: item = letterboxed frames of one segment plus its per-frame offsets."""

    def __init__(self, items: list[dict], root: Path, size: int):
        self.items, self.root, self.size = items, Path(root), size

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        it = self.items[i]
        try:
            frames = read_span(self.root / it["video"], it["begin"] - FIRST_FRAME_NUMBER,
                               it["end"] - FIRST_FRAME_NUMBER, self.size)
        except VideoDecodeError as exc:
            return {"ok": False, "video": it["video"], "reason": exc.reason}
        if it["flip"]:
            frames = frames.flip(-1)
        return {"ok": True, "video": it["video"], "frames": frames, "next": torch.as_tensor(it["next"]),
                "pre": torch.as_tensor(it["pre"]), "fallback": float(it["fallback"])}


def collate_segments(items: list[dict]) -> dict:
    ok = [it for it in items if it["ok"]]
    out = {"failed": [(it["video"], it["reason"]) for it in items if not it["ok"]], "size": len(ok)}
    if not ok:
        return out
    tmax = max(len(it["frames"]) for it in ok)
    frames = torch.zeros((len(ok), tmax) + tuple(ok[0]["frames"].shape[1:]), dtype=torch.uint8)
    nxt = torch.full((len(ok), tmax), -1, dtype=torch.long)
    pre = torch.full((len(ok), tmax), -1, dtype=torch.long)
    for j, it in enumerate(ok):
        n = len(it["frames"])
        frames[j, :n], nxt[j, :n], pre[j, :n] = it["frames"], it["next"], it["pre"]
    out.update(frames=frames, next=nxt, pre=pre, length=torch.tensor([len(it["frames"]) for it in ok]),
               fallback=np.array([it["fallback"] for it in ok]))
    return out


class SpanDataset(Dataset):
    """Test videos: item = letterboxed frames of the annotated span."""

    def __init__(self, samples, root: Path, size: int):
        self.samples, self.root, self.size = list(samples), Path(root), size

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        s = self.samples[i]
        start, end = int(s.meta["start_frame"]), int(s.meta["end_frame"])
        report: dict = {}
        try:
            frames = read_span(self.root / s.video, start - FIRST_FRAME_NUMBER, end - FIRST_FRAME_NUMBER, self.size,
                               report)
        except VideoDecodeError as exc:
            return {"ok": False, "video": s.video, "reason": exc.reason}
        return {"ok": True, "video": s.video, "frames": frames, "length": end - start + 1, "gt": float(s.label),
                "truncated": report.get("truncated")}


def _first(items):
    return items[0]


# --- model ---------------------------------------------------------------------------------------------

class CountingNet(nn.Module):
    """Backbone + per-side anchor classifier and offset regressor (SEVERE's ``Head``)."""

    def __init__(self, backbone: nn.Module, num_anchors: int):
        super().__init__()
        d, k = int(backbone.feature_dim), int(num_anchors)
        self.backbone, self.k = backbone, k
        self.cls_left, self.box_left = nn.Linear(d, 2 * k), nn.Linear(d, k)
        self.cls_right, self.box_right = nn.Linear(d, 2 * k), nn.Linear(d, k)

    def forward(self, x: torch.Tensor):
        f = self.backbone.forward_features(x)
        return (self.cls_left(f).view(-1, 2, self.k), self.box_left(f),
                self.cls_right(f).view(-1, 2, self.k), self.box_right(f))


def side_loss(cls_logits, box_pred, cls_t: np.ndarray, box_t: np.ndarray, box_weight: float) -> torch.Tensor:
    """Cross-entropy over anchors (ignoring unknown lengths) + weighted smooth-L1 on positive anchors, the
    latter averaged over all anchors of the batch as the reference does."""
    dev = cls_logits.device
    cls_t = torch.as_tensor(cls_t, device=dev)
    box_t = torch.as_tensor(box_t, dtype=box_pred.dtype, device=dev)
    loss = box_pred.new_zeros(())
    if (cls_t >= 0).any():
        loss = loss + F.cross_entropy(cls_logits, cls_t, ignore_index=-1)
    elif distributed.world_size() > 1:
        # nothing known on this rank: a zero term keeps the classifier in the graph, else its gradient
        # bucket is never all-reduced here and the other ranks wait (one process: no gradient, as before)
        loss = loss + cls_logits.sum() * 0.0
    pos = (cls_t == 1).to(box_pred.dtype)
    box = F.smooth_l1_loss(box_pred, box_t, reduction="none") * pos
    return loss + box_weight * box.mean()


def _outputs_numpy(out) -> tuple:
    """Network outputs -> (left positive-probabilities, left offsets, right probs, right offsets), numpy."""
    cl, bl, cr, br = out
    return tuple(t.detach().float().cpu().numpy() for t in (cl.softmax(1)[:, 1], bl, cr.softmax(1)[:, 1], br))


def train_batch(model, optimizer, batch: dict, cfg: CountingConfig, rng: np.random.Generator,
                norm: _ToModelInput, device, forward=None) -> list[torch.Tensor]:
    """Track a batch of segments for up to ``train_steps`` optimisation steps (reference ``train_epoch``);
    returns each step's loss (device tensors). ``forward``: how to call the model (precision, DDP). Under
    DDP every rank takes as many steps as the rank that tracks longest."""
    forward = forward or model
    frames = batch["frames"].to(device, non_blocking=True)
    lengths = batch["length"]
    L = lengths.numpy().astype(np.int64)
    nxt, pre = batch["next"].numpy(), batch["pre"].numpy()
    fallback = batch["fallback"]
    n = len(L)
    scales = cfg.scale_grid()
    anchors = np.asarray(cfg.anchors)
    rows = np.arange(n)

    def restart(j):
        return init_state(rng, int(L[j]), float(nxt[j, 0] + 1), float(fallback[j]), scales)

    m = np.zeros(n, dtype=np.int64)
    a = np.zeros(n)
    for j in range(n):
        m[j], a[j] = restart(j)
    b = a.copy()
    finished = np.zeros(n, dtype=bool)
    losses = []
    for _ in range(cfg.train_steps):
        idx = window_indices(m, a, b, cfg.frames, cfg.context_left, cfg.context_right)
        x = gather_clips(frames, lengths, idx, norm)
        t_left = np.where(m < L, pre[rows, np.minimum(m, L - 1)] + 1, 0)
        t_right = np.where(m + 1 < L, nxt[rows, np.minimum(m + 1, L - 1)] + 1, 0)
        cls_l, box_l = anchor_targets(t_left, a, anchors, cfg.iou_bound)
        cls_r, box_r = anchor_targets(t_right, b, anchors, cfg.iou_bound)
        out = forward(x)
        loss = (side_loss(out[0], out[1], cls_l, box_l, cfg.box_weight)
                + side_loss(out[2], out[3], cls_r, box_r, cfg.box_weight))
        optimise(optimizer, loss)
        losses.append(loss.detach())

        # move every state forward and adopt the predicted lengths; restart those that left or collapsed
        pl, bl, pr, br = _outputs_numpy(out)
        lo, hi = cfg.step_divisor
        step = np.maximum(L / rng.uniform(lo, hi, size=n), 1).astype(np.int64)
        m = m + step
        a = a * decode_ratio(pl, bl, anchors, cfg.train_box_clamp)
        b = b * decode_ratio(pr, br, anchors, cfg.train_box_clamp)
        done = m >= L
        finished |= done
        for j in np.flatnonzero(done | (a < cfg.min_cycle_frames) | (b < cfg.min_cycle_frames)):
            m[j], a[j] = restart(j)
            b[j] = a[j]
        # the ranks stop together: each step is DDP's gradient all-reduce, and the reference stops once its
        # whole batch (here every rank's share) has finished
        if distributed.min_int(int(finished.all())):
            break
    return losses


# --- the runner ----------------------------------------------------------------------------------------

def _segment_items(samples, cfg: CountingConfig, rng: np.random.Generator, skip: set) -> list[dict]:
    items = []
    for s in samples:
        if s.video in skip:
            continue
        start, end = int(s.meta["start_frame"]), int(s.meta["end_frame"])
        nxt, pre = video_offsets(s.meta)
        for _ in range(cfg.segments_per_video):
            begin, stop, fallback = sample_segment(rng, s.meta["temporal_bound"], start, end, cfg.max_segment_frames)
            if stop - begin + 1 < 2:
                continue
            sl = slice(begin - start, stop - start + 1)
            items.append({"video": s.video, "begin": begin, "end": stop, "flip": bool(rng.random() < 0.5),
                          "next": nxt[sl], "pre": pre[sl], "fallback": fallback})
    order = rng.permutation(len(items))
    return [items[i] for i in order]


class PassSegments(Dataset):
    """The training segments of every pass, keyed ``(pass, index)``: a pass's segments, flips and order are
    drawn from (seed, pass) alone, so the main process (sampler) and any worker (decoding) agree on them
    without the loader being rebuilt."""

    def __init__(self, samples, root: Path, cfg: CountingConfig, seed: int):
        self.samples, self.root, self.cfg, self.seed = list(samples), Path(root), cfg, int(seed)
        self._pass, self._items = None, []

    def items(self, p: int) -> list[dict]:
        if p != self._pass:
            self._pass, self._items = p, _segment_items(self.samples, self.cfg, np.random.default_rng([self.seed, p, 0]), set())
        return self._items

    def __len__(self):  # the segment count of pass 0; other passes may differ by the few too-short segments
        return len(self.items(0))

    def __getitem__(self, key):
        p, i = key
        return SegmentDataset(self.items(p), self.root, self.cfg.crop)[i]


class SegmentSampler(PassSampler):
    """``(pass, index)`` keys of one pass's segments (already in their drawn order), this rank's share."""

    def __init__(self, segments: PassSegments, rank: int = 0, world: int = 1):
        super().__init__(len(segments), segments.seed, shuffle=False, rank=rank, world=world)
        self.segments = segments

    def set_pass(self, pass_index: int) -> None:
        super().set_pass(pass_index)
        self.n = len(self.segments.items(pass_index))


def run(ctx: RunContext) -> Outcome:
    proto = ctx.task.protocol
    cfg = CountingConfig.from_protocol(proto)
    if not ctx.train_samples:
        raise SevereError(f"task {ctx.task.id}: the training list is empty")
    torch.manual_seed(ctx.seed)
    precision = Precision(ctx.device, ctx.precision, ctx.compile, channels_last=True)
    model = precision.prepare(CountingNet(ctx.checkpoint.backbone, len(cfg.anchors)))
    forward = precision.compiled(distributed.wrap(model, precision.device))
    optim_spec = proto["optimizer"]  # checkpoint overrides are already in ctx.task.protocol
    optimizer = build_optimizer(model, optim_spec, cfg.batch_size)
    norm = _ToModelInput(**norm_kwargs(ctx.normalisation or {}), device=precision.device)

    segments = PassSegments(ctx.train_samples, ctx.root, cfg, ctx.seed)
    sampler = SegmentSampler(segments, distributed.rank(), distributed.world_size())
    loader = make_loader(segments, cfg.batch_size, sampler, collate_segments, ctx.workers, ctx.device, seed=ctx.seed)
    track = {}

    def on_pass_start(p: int) -> None:
        # tracking draws depend only on (seed, pass, rank): a resumed run repeats them exactly
        track["rng"] = np.random.default_rng([ctx.seed, p, 1, distributed.rank()])

    def step_model(x):
        with precision.autocast():
            return tuple(o.float() for o in forward(precision.input(x)))

    def train_batch_(batch: dict, p: int, step: int):
        losses = train_batch(model, optimizer, batch, cfg, track["rng"], norm, precision.device, forward=step_model)
        return torch.stack(losses).sum(), len(losses)

    trained = fit(ctx=ctx, model=model, optimizer=optimizer, dataset=segments, batch_size=cfg.batch_size,
                  passes=cfg.passes, train_batch=train_batch_, collate=collate_segments, precision=precision,
                  on_pass_start=on_pass_start, loader=loader, sampler=sampler)
    unreadable = trained.unreadable

    predictions, test_failed, truncated = _test(model, ctx, cfg, norm, step_model)
    unreadable_all = {**unreadable, **test_failed}
    if not predictions:
        raise SevereError(f"task {ctx.task.id}: no test video could be decoded ({len(test_failed)} unreadable)")
    pred = np.array([v["pred"] for v in predictions.values()])
    gt = np.array([v["gt"] for v in predictions.values()])
    metrics = {**counting_metrics(pred, gt), "num_scored": len(predictions)}
    return Outcome(metrics=metrics, unreadable=sorted(unreadable_all), num_train=len(ctx.train_samples),
                   num_test=len(predictions), predictions=counting_predictions(predictions, unreadable_all),
                   engine={**precision.record(), "world_size": distributed.world_size(), "workers": ctx.workers},
                   history=trained.history, truncated=truncated)


@torch.no_grad()
def _test(model, ctx: RunContext, cfg: CountingConfig, norm: _ToModelInput, forward=None):
    forward = forward or model
    model.eval()
    loader = DataLoader(SpanDataset(ctx.test_samples, ctx.root, cfg.crop), batch_size=1, shuffle=False,
                        collate_fn=_first, **loader_kwargs(ctx.workers, ctx.device))
    predictions, failed, truncated = {}, {}, {}
    for item in loader:
        if not item["ok"]:
            failed[item["video"]] = item["reason"]
            continue
        if item["truncated"]:  # scored on the frames there are, and counted in the result
            truncated[item["video"]] = item["truncated"]
        frames = item["frames"].to(ctx.device)[None]
        length = torch.tensor([len(item["frames"])])

        def predict(m, a, b):
            idx = window_indices(m, a, b, cfg.frames, cfg.context_left, cfg.context_right)
            outs = []
            for i in range(0, len(idx), cfg.batch_size):
                outs.append(_outputs_numpy(forward(gather_clips(frames, length, idx[i:i + cfg.batch_size], norm))))
            return tuple(np.concatenate(parts) for parts in zip(*outs))

        est = estimate_count(predict, item["length"], cfg)
        predictions[item["video"]] = {"pred": est["count"], "gt": item["gt"], "cycle": round(est["cycle"], 2)}
    return predictions, failed, truncated
