"""Clip datasets: the step from annotated videos to model inputs.

Training yields one random clip per item (``clips_per_video`` items per video and pass); testing yields all
evenly spaced clips of one video, decoded once. A video that cannot be decoded is reported in the item
(``ok: False``) and counted by the runner; it is never replaced by another sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..video.reader import VideoDecodeError, open_video
from ..video.sampling import test_clip_indices, train_clip_indices
from ..video.transforms import TestViews
from .clip_labels import clip_span, labels_in_span


def encode_target(label, mode: str, num_classes: int | None):
    if mode == "multi":
        t = torch.zeros(num_classes, dtype=torch.float32)
        if len(label):
            t[list(label)] = 1.0
        return t
    if mode == "count":
        return torch.tensor(float(label))
    return torch.tensor(int(label), dtype=torch.long)


def _sampling_args(spec: dict) -> dict:
    """``{frames, fps}`` (time-based, SEVERE code), ``{frames, stride}`` (frame-based, PySlowFast) or
    ``{frames, sampling: segments}`` (VideoMAE SSv2), and how clips longer than the video are filled
    (``short_video``: loop or clamp)."""
    if spec.get("sampling") == "segments":  # VideoMAE SSv2: one frame per segment of the whole video
        return {"segments": True}
    extra = {"short_video": spec["short_video"]} if spec.get("short_video") else {}
    if spec.get("stride"):
        if spec.get("stride_fps"):  # stride counted on a stride_fps timeline (Charades: 24 fps frame folders)
            extra["stride_fps"] = float(spec["stride_fps"])
        return {"stride": int(spec["stride"]), **extra}
    return {"target_fps": float(spec["fps"]), **extra}


def decode_test_clips(path: Path, frames: int, num_clips: int, sampling: dict, static: bool = False,
                      frame_fps: float | None = None, report: dict | None = None,
                      short_side: int | None = None) -> np.ndarray:
    """The ``num_clips`` evenly spaced test clips of the video at ``path`` as (clips, T, H, W, 3) frames, each
    frame decoded once; ``sampling`` holds ``test_clip_indices``' spacing keywords. ``static`` makes each clip
    its middle frame repeated ``frames`` times. ``frame_fps``: the rate of a frame-folder video.
    ``report["truncated"]`` is set when the video decodes fewer frames than its container declares."""
    with open_video(path, frame_fps=frame_fps, short_side=short_side) as video:  # one open: PyAV counts by decoding
        idx = test_clip_indices(video.num_frames, video.fps, frames, num_clips=num_clips, **sampling)
        if static:
            idx = np.repeat(idx[:, [idx.shape[1] // 2]], frames, axis=1)
        clips = video.get_clips(idx)
        if report is not None:
            note = video.truncation()
            if note:
                report["truncated"] = note
        return clips


class TrainClips(Dataset):
    def __init__(self, samples, root: Path, sampling: dict, transform, clips_per_video: int, seed: int,
                 label_mode: str = "single", num_classes: int | None = None, clip_targets: bool = False):
        self.samples, self.root, self.transform = list(samples), Path(root), transform
        self.clip_targets = clip_targets  # multi-label: the actions overlapping the clip (PROTOCOL.md §5)
        self.frames = int(sampling["frames"])
        self.sampling = _sampling_args(sampling)
        self.decode_short_side = sampling.get("decode_short_side")  # fast_decode profile: resize while decoding
        self.clips_per_video, self.seed = int(clips_per_video), int(seed)
        self.label_mode, self.num_classes = label_mode, num_classes
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch  # clip start positions differ per pass but are reproducible

    def __len__(self):
        return len(self.samples) * self.clips_per_video

    def __getitem__(self, key):
        """``key``: an item index (in the pass of ``set_epoch``) or a ``(pass, index)`` pair (the trainer's
        sampler; persistent workers learn the pass from it)."""
        epoch, i = key if isinstance(key, tuple) else (self.epoch, key)
        s = self.samples[i % len(self.samples)]
        rng = np.random.default_rng([self.seed, epoch, i])
        try:
            with open_video(self.root / s.video, frame_fps=s.meta.get("frame_fps"),
                            short_side=self.decode_short_side) as video:
                idx = train_clip_indices(video.num_frames, video.fps, self.frames, rng=rng, **self.sampling)
                frames = video.get_frames(idx)
                fps = video.fps
        except VideoDecodeError as exc:
            return {"ok": False, "video": s.video, "reason": str(exc)}
        label = s.label
        if self.clip_targets and "segments" in s.meta:
            label = labels_in_span(s.meta["segments"], *clip_span(idx, fps))
        # the transform's draws (crop, flip, jitter) come from (seed, pass, index) too, never from the
        # process-wide RNG: the same clip whether it is made in the main process or in any worker
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(rng.integers(0, 2**63 - 1)))
            clip = self.transform(frames)  # transforms take (T, H, W, 3) frames
        aug = {}
        if isinstance(clip, tuple):  # a split transform: uint8 clip + parameters for the device half
            clip, aug = clip
        return {"ok": True, "clip": clip, "target": encode_target(label, self.label_mode, self.num_classes),
                "video": s.video, "aug": aug, "key": (epoch, i)}


def decode_test_frames(path: Path, frames: int, num_clips: int, sampling: dict,
                       frame_fps: float | None = None, report: dict | None = None,
                       short_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The distinct frames (U, H, W, 3) of the ``num_clips`` evenly spaced test clips of a video, each decoded
    once, and ``inverse`` (clips, T): the row of each clip frame. ``report["truncated"]`` is set when the video
    decodes fewer frames than its container declares."""
    with open_video(path, frame_fps=frame_fps, short_side=short_side) as video:
        idx = test_clip_indices(video.num_frames, video.fps, frames, num_clips=num_clips, **sampling)
        idx = np.clip(idx, 0, video.num_frames - 1)
        unique, inverse = np.unique(idx, return_inverse=True)
        decoded = video.get_frames(unique)
        if report is not None and video.truncation():
            report["truncated"] = video.truncation()
        return decoded, inverse.reshape(idx.shape)


class TestClips(Dataset):
    """One item per video: all its test clips (and spatial crops) stacked as (views, C, T, H, W) — or, with a
    ``TestViews`` transform, as uint8 (views, T, 3, H, W) made from each distinct frame resized once."""

    def __init__(self, samples, root: Path, sampling: dict, num_clips: int, transform,
                 label_mode: str = "single", num_classes: int | None = None):
        self.samples, self.root, self.transform = list(samples), Path(root), transform
        self.frames, self.sampling, self.num_clips = int(sampling["frames"]), _sampling_args(sampling), int(num_clips)
        self.decode_short_side = sampling.get("decode_short_side")
        self.label_mode, self.num_classes = label_mode, num_classes

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        s = self.samples[i]
        report: dict = {}
        try:
            if isinstance(self.transform, TestViews):
                views = self.transform(*decode_test_frames(self.root / s.video, self.frames, self.num_clips,
                                                           self.sampling, frame_fps=s.meta.get("frame_fps"),
                                                           report=report, short_side=self.decode_short_side))
            else:
                clips = decode_test_clips(self.root / s.video, self.frames, self.num_clips, self.sampling,
                                          frame_fps=s.meta.get("frame_fps"), report=report,
                                          short_side=self.decode_short_side)
        except VideoDecodeError as exc:
            return {"ok": False, "video": s.video, "reason": str(exc)}
        if not isinstance(self.transform, TestViews):
            views = [self.transform(c) for c in clips]
            views = torch.cat([v if v.dim() == 5 else v.unsqueeze(0) for v in views])
        return {"ok": True, "clip": views, "target": encode_target(s.label, self.label_mode, self.num_classes),
                "video": s.video, "index": i, "truncated": report.get("truncated")}


def collate_ok(items):
    """Stack the decodable items; hand the failures back separately so the runner can count them."""
    ok = [it for it in items if it["ok"]]
    failed = [(it["video"], it["reason"]) for it in items if not it["ok"]]
    batch = {"failed": failed, "videos": [it["video"] for it in ok], "size": len(ok)}
    if ok:
        batch["clip"] = torch.stack([it["clip"] for it in ok])
        batch["target"] = torch.stack([it["target"] for it in ok])
        batch["aug"] = {k: torch.stack([it["aug"][k] for it in ok]) for k in ok[0].get("aug", {})}
    return batch


def collate_single(items):
    """Test loader: one video per batch."""
    return items[0]


def collate_views(items):
    """Test loader: the views of several videos concatenated (one forward pass), with each video's span."""
    ok = [it for it in items if it["ok"]]
    batch = {"failed": [(it["video"], it["reason"]) for it in items if not it["ok"]], "size": len(ok),
             "videos": [it["video"] for it in ok], "targets": [it["target"] for it in ok],
             "indices": [it["index"] for it in ok], "spans": [],
             "truncated": [(it["video"], it["truncated"]) for it in ok if it.get("truncated")]}
    if ok:
        lo = 0
        for it in ok:
            batch["spans"].append((lo, lo + len(it["clip"])))
            lo += len(it["clip"])
        batch["clip"] = torch.cat([it["clip"] for it in ok])
    return batch
