"""Which frames make a clip: training (one random clip) and testing (N clips evenly over the video).

Two ways to space the frames of a clip, each following the reference code of the protocol that uses it:

* **fps** (``target_fps=16``): the SEVERE action-recognition code (AVID-CMA ``VideoDataset``/``av_load_video``).
  The video is re-timed to ``target_fps``: frame ``k`` of a clip starting at source position ``s`` is source
  frame ``floor(s + k * video_fps / target_fps)``, so fractional strides (25 -> 16 fps) round each time
  position down to the frame shown at that time, and a video slower than the target repeats frames.
  Training starts at a uniformly random (continuous) position; testing takes ``num_clips`` clips whose starts
  are ``linspace(0, n - T, num_clips)`` (as integers) over the re-timed video of ``n`` frames.
  **Short videos loop**: a video with fewer than T re-timed frames is played from its start again until the
  clip is full (``frames + frames[:missing]``, as the reference ``pad_missing`` does); every test clip is then
  that same looped clip.
* **stride** (``stride=8``): PySlowFast (Charades): frame ``k`` is ``start + k * stride``, over a span of
  ``(T - 1) * stride + 1`` frames. Training picks an integer start uniformly (for a video shorter than the
  span, the start is drawn from ``[num_frames - span, 0]``); testing spaces starts by
  ``round(i * max(num_frames - span, 0) / (num_clips - 1))`` (one clip: the centred start).
  **Short videos clamp**: indices outside the video repeat its first/last frame, as PySlowFast does.

  **stride_fps** (``stride=8, stride_fps=24``): the stride counts frames of a ``stride_fps`` timeline, not of
  the file. PySlowFast reads Charades as 24 fps JPEG folders (``Charades_v1_rgb``); the 480p mp4s keep each
  video's own rate (25, 29.97, 30 ...), where every 8th file frame would span other seconds. The video is
  re-timed to ``stride_fps`` (as ``retimed_indices``), the PySlowFast rule runs on that timeline, and each
  position maps back to the file frame shown at that time: a clip spans the same seconds whatever is read.

* **segments** (``segments=True``): VideoMAE's Something-Something-v2 loader (``ssv2.py``, ``num_segment`` =
  clip length, ``clip_len`` 1): the whole video is cut into T equal segments and one frame is taken from each,
  so a clip always spans the whole video (no looping). Training: frame ``i * (n // T) + randint(n // T)``; a
  video with fewer than T frames gives T copies of frame 0, as VideoMAE does. Testing: clip ``j`` of
  ``K`` takes ``floor(tick * (i + j / K))`` with ``tick = n / T`` (VideoMAE's two test clips: ``int(tick * i)``
  and ``int(tick / 2 + tick * i)``).

``short_video="loop"`` or ``"clamp"`` overrides the mode's own rule for videos shorter than a clip (a protocol
value in the task file): *loop* plays the frames the clip can take (re-timed, or every ``stride``-th) again
from the start; *clamp* repeats the last one.

If the video's own fps is unknown (0, None, NaN) the fps mode treats it as equal to the target (stride 1).
All functions are pure given ``rng`` (a ``numpy.random.Generator``).
"""

from __future__ import annotations

import math

import numpy as np

_EPS = 1e-6  # guards floor() against 2.9999999 from float accumulation


def _check(num_frames: int, num_frames_out: int) -> tuple[int, int]:
    num_frames, num_frames_out = int(num_frames), int(num_frames_out)
    if num_frames < 1:
        raise ValueError(f"video has {num_frames} frames; need at least 1")
    if num_frames_out < 1:
        raise ValueError(f"clip length must be >= 1, got {num_frames_out}")
    return num_frames, num_frames_out


def _mode(target_fps, stride) -> str:
    if (target_fps is None) == (stride is None):
        raise ValueError("give exactly one of target_fps (re-time to an fps) or stride (every k-th frame)")
    if stride is not None:
        if int(stride) != stride or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        return "stride"
    if not target_fps or target_fps <= 0:
        raise ValueError(f"target_fps must be positive, got {target_fps!r}")
    return "fps"


def fps_step(video_fps, target_fps: float) -> float:
    """Source frames per output frame when re-timing ``video_fps`` to ``target_fps``."""
    if video_fps is None or not math.isfinite(float(video_fps)) or float(video_fps) <= 0:
        return 1.0
    return float(video_fps) / float(target_fps)


SHORT_VIDEO_RULES = ("loop", "clamp")
_DEFAULT_RULE = {"fps": "loop", "stride": "clamp"}


def loop_pad(indices: np.ndarray, length: int) -> np.ndarray:
    """Repeat ``indices`` from its start until it has ``length`` entries (or cut it to ``length``)."""
    return np.resize(np.asarray(indices, dtype=np.int64), int(length))


def clamp_pad(indices: np.ndarray, length: int) -> np.ndarray:
    """Repeat the last of ``indices`` until it has ``length`` entries (or cut it to ``length``)."""
    idx = np.asarray(indices, dtype=np.int64)[: int(length)]
    return np.concatenate([idx, np.full(int(length) - len(idx), idx[-1], dtype=np.int64)])


def _rule(mode: str, short_video) -> str:
    rule = short_video or _DEFAULT_RULE[mode]
    if rule not in SHORT_VIDEO_RULES:
        raise ValueError(f"short_video must be one of {SHORT_VIDEO_RULES}, got {short_video!r}")
    return rule


def retimed_indices(num_frames: int, video_fps, target_fps: float) -> np.ndarray:
    """Source frame of each output frame when the whole video is re-timed to ``target_fps``.

    Output times run ``0, 1/target, 2/target, ...`` up to half a source frame before the end, as in the
    reference decoder; each maps to the source frame shown at that time.
    """
    num_frames = int(num_frames)
    step = fps_step(video_fps, target_fps)
    n = max(1, math.ceil((num_frames - 0.5) / step))
    idx = np.floor(np.arange(n) * step + _EPS).astype(np.int64)
    return np.clip(idx, 0, num_frames - 1)


def train_segment_indices(num_frames: int, num_frames_out: int, rng=None) -> np.ndarray:
    """VideoMAE SSv2 training clip: one random frame from each of T equal segments of the whole video."""
    n, T = _check(num_frames, num_frames_out)
    rng = rng if rng is not None else np.random.default_rng()
    seg = n // T
    if seg > 0:
        return np.arange(T, dtype=np.int64) * seg + rng.integers(0, seg, size=T)
    return np.zeros(T, dtype=np.int64)  # n < T: VideoMAE's `np.zeros((num_segment,))`


def test_segment_indices(num_frames: int, num_frames_out: int, num_clips: int = 2) -> np.ndarray:
    """VideoMAE SSv2 test clips: (num_clips, T); clip j takes ``floor(tick * (i + j / num_clips))``."""
    n, T = _check(num_frames, num_frames_out)
    if int(num_clips) < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    tick = n / float(T)
    pos = np.arange(T)[None, :] + np.arange(int(num_clips))[:, None] / float(num_clips)
    return np.clip(np.floor(tick * pos + _EPS).astype(np.int64), 0, n - 1)


test_segment_indices.__test__ = False


def _on_timeline(sample, num_frames, video_fps, stride_fps):
    """Run the stride rule ``sample(n)`` on the ``stride_fps`` timeline of the video and map its positions back
    to file frames (``stride_fps=None``: the file's own frames)."""
    if stride_fps is None:
        return sample(int(num_frames))
    timeline = retimed_indices(num_frames, video_fps, float(stride_fps))
    return timeline[sample(len(timeline))]


def train_clip_indices(num_frames, video_fps, num_frames_out, target_fps=None, rng=None, *, stride=None,
                       short_video=None, segments=False, stride_fps=None):
    """One training clip: (num_frames_out,) source frame indices from a uniformly random start."""
    if segments:
        return train_segment_indices(num_frames, num_frames_out, rng)
    if stride_fps is not None and stride is not None:
        return _on_timeline(lambda n: train_clip_indices(n, None, num_frames_out, rng=rng, stride=stride,
                                                         short_video=short_video), num_frames, video_fps, stride_fps)
    num_frames, T = _check(num_frames, num_frames_out)
    mode = _mode(target_fps, stride)
    rule = _rule(mode, short_video)
    rng = rng if rng is not None else np.random.default_rng()
    if mode == "stride":
        stride = int(stride)
        span = (T - 1) * stride + 1
        if span > num_frames and rule == "loop":
            offset = int(rng.integers(0, min(stride, num_frames)))
            return loop_pad(np.arange(offset, num_frames, stride), T)
        lo, hi = (num_frames - span, 0) if span > num_frames else (0, num_frames - span)
        start = int(rng.integers(lo, hi, endpoint=True))
        return np.clip(start + np.arange(T, dtype=np.int64) * stride, 0, num_frames - 1)

    step = fps_step(video_fps, target_fps)
    span = T * step  # source frames covered by the clip
    if span > num_frames:
        timeline = retimed_indices(num_frames, video_fps, target_fps)
        return loop_pad(timeline, T) if rule == "loop" else clamp_pad(timeline, T)
    start = rng.uniform(0.0, num_frames - span)
    idx = np.floor(start + np.arange(T) * step + _EPS).astype(np.int64)
    return np.clip(idx, 0, num_frames - 1)


def test_clip_indices(num_frames, video_fps, num_frames_out, target_fps=None, num_clips=10, *, stride=None,
                      short_video=None, segments=False, stride_fps=None):
    """``num_clips`` clips evenly spaced over the whole video: (num_clips, num_frames_out) indices."""
    if segments:
        return test_segment_indices(num_frames, num_frames_out, num_clips)
    if stride_fps is not None and stride is not None:
        return _on_timeline(lambda n: test_clip_indices(n, None, num_frames_out, num_clips=num_clips, stride=stride,
                                                        short_video=short_video), num_frames, video_fps, stride_fps)
    num_frames, T = _check(num_frames, num_frames_out)
    mode = _mode(target_fps, stride)
    rule = _rule(mode, short_video)
    num_clips = int(num_clips)
    if num_clips < 1:
        raise ValueError(f"num_clips must be >= 1, got {num_clips}")
    if mode == "stride":
        stride = int(stride)
        span = (T - 1) * stride + 1
        if span > num_frames and rule == "loop":
            return np.tile(loop_pad(np.arange(0, num_frames, stride), T), (num_clips, 1))
        room = max(num_frames - span, 0)
        if num_clips == 1:
            starts = np.array([int(np.round(room / 2))])
        else:
            starts = np.round(np.arange(num_clips) * (room / (num_clips - 1))).astype(np.int64)
        idx = starts[:, None] + np.arange(T, dtype=np.int64)[None, :] * stride
        return np.clip(idx, 0, num_frames - 1)

    timeline = retimed_indices(num_frames, video_fps, target_fps)
    n = len(timeline)
    if T >= n:
        clip = loop_pad(timeline, T) if rule == "loop" else clamp_pad(timeline, T)
        return np.tile(clip, (num_clips, 1))
    starts = np.linspace(0, n - T, num_clips).astype(np.int64)
    return timeline[starts[:, None] + np.arange(T)[None, :]]


test_clip_indices.__test__ = False  # a library function, not a pytest test (it starts with "test_")
