"""Clip transforms: uint8 frames in, normalised float clip (C, T, H, W) out.

Built on ``torchvision.transforms.v2`` applied to the whole clip as one ``tv_tensors.Video`` (T, C, H, W), so a
random crop, flip or colour jitter draws its parameters once and applies them to every frame alike.
Spatial work happens on uint8 (crop first, then jitter on the small crop) to stay cheap on CPU.

Accepted input: a numpy array (T, H, W, 3) uint8 as ``VideoHandle.get_frames`` returns it, or a uint8 tensor
(T, C, H, W).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CHANNEL_ORDERS = ("RGB", "BGR")


def as_video_tensor(clip) -> tv_tensors.Video:
    """(T, H, W, 3) uint8 numpy or (T, C, H, W) tensor -> uint8 ``Video`` (T, C, H, W)."""
    if isinstance(clip, np.ndarray):
        if clip.ndim != 4 or clip.shape[-1] != 3:
            raise ValueError(f"expected frames (T, H, W, 3), got {clip.shape}")
        clip = torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2)
    elif isinstance(clip, torch.Tensor):
        if clip.ndim != 4 or clip.shape[1] != 3:
            raise ValueError(f"expected a tensor (T, 3, H, W), got {tuple(clip.shape)}")
    else:
        raise TypeError(f"expected a numpy array or tensor, got {type(clip).__name__}")
    return tv_tensors.Video(clip)


class _ToModelInput:
    """uint8 (..., T, C, H, W) -> float, /255, optional mean/std, optional RGB->BGR, -> (..., C, T, H, W)."""

    def __init__(self, mean, std, channel_order, device=None):
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
        if (mean is None) != (std is None):
            raise ValueError("give both mean and std, or neither (no normalisation)")
        # ``device``: where the clips arrive (the counting runner normalises on the model's device)
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32, device=device).view(3, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32, device=device).view(3, 1, 1)
        self.bgr = channel_order == "BGR"

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        x = clip.as_subclass(torch.Tensor).to(torch.float32).div_(255.0)
        if self.mean is not None:
            x = x.sub_(self.mean).div_(self.std)
        if self.bgr:  # after normalising with RGB statistics, as the reference `switch_channels` does
            x = x.flip(-3)
        return x.transpose(-4, -3).contiguous()  # (..., T, C, H, W) -> (..., C, T, H, W)


class ClipTransform:
    """A uint8 spatial pipeline (``v2.Compose``) followed by conversion to the model's input."""

    def __init__(self, spatial: v2.Transform, to_input: _ToModelInput, crops: str | None = None,
                 crop: int | None = None):
        self.spatial, self.to_input, self.crops, self.crop = spatial, to_input, crops, crop

    def __call__(self, clip) -> torch.Tensor:
        video = self.spatial(as_video_tensor(clip))
        if self.crops == "three":
            video = torch.stack(three_crops(video, self.crop))
        return self.to_input(video)

    def __repr__(self):
        return f"ClipTransform(spatial={self.spatial}, crops={self.crops or 'one'})"


def three_crops(video: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Left/centre/right (or top/centre/bottom for portrait) square crops along the long side.

    As PySlowFast's ``uniform_crop`` for spatial views 0, 1, 2; the short side is centred.
    """
    h, w = video.shape[-2:]
    if min(h, w) < size:
        raise ValueError(f"cannot take {size}px crops from a {w}x{h} clip; resize first")
    if w >= h:
        y = (h - size) // 2
        xs = (0, (w - size) // 2, w - size)
        return [video[..., y:y + size, x:x + size] for x in xs]
    x = (w - size) // 2
    ys = (0, (h - size) // 2, h - size)
    return [video[..., y:y + size, x:x + size] for y in ys]


class RandomShortSideScale(v2.Transform):
    """PySlowFast ``random_short_side_scale_jitter``: the short side goes to a random size in [lo, hi], drawn
    uniformly or, with ``inverse_uniform`` (``DATA.INV_UNIFORM_SAMPLE``), as 1 / U(1 / hi, 1 / lo)."""

    def __init__(self, lo: int, hi: int, inverse_uniform: bool = False):
        super().__init__()
        self.lo, self.hi, self.inverse_uniform = int(lo), int(hi), bool(inverse_uniform)

    def make_params(self, flat_inputs) -> dict:
        if self.inverse_uniform:
            size = 1.0 / torch.empty(()).uniform_(1.0 / self.hi, 1.0 / self.lo).item()
        else:
            size = torch.empty(()).uniform_(float(self.lo), float(self.hi)).item()
        return {"size": int(round(size))}

    def transform(self, inpt, params: dict):
        return self._call_kernel(F.resize, inpt, size=[params["size"]], antialias=True)


def _spatial_ops(crop, scale, ratio, resize_short_range, resize_short_inverse_uniform, hflip) -> list[v2.Transform]:
    """The spatial half of training augmentation, shared by the CPU and the split (worker/device) pipelines."""
    ops: list[v2.Transform] = []
    if resize_short_range is not None:
        lo, hi = (int(v) for v in resize_short_range)
        ops += [RandomShortSideScale(lo, hi, resize_short_inverse_uniform), v2.RandomCrop(crop)]
    else:
        ops.append(v2.RandomResizedCrop(crop, scale=tuple(scale), ratio=tuple(ratio), antialias=True))
    if hflip:
        ops.append(v2.RandomHorizontalFlip())
    return ops


def train_transform(crop: int = 112, scale: Sequence[float] = (0.08, 1.0), hflip: bool = True,
                    color_jitter: Sequence[float] | None = (0.4, 0.4, 0.4, 0.2),
                    mean: Sequence[float] | None = IMAGENET_MEAN, std: Sequence[float] | None = IMAGENET_STD,
                    channel_order: str = "RGB", ratio: Sequence[float] = (3 / 4, 4 / 3),
                    resize_short_range: Sequence[int] | None = None,
                    resize_short_inverse_uniform: bool = False) -> ClipTransform:
    """Training augmentation, identical for all frames of a clip. Output (C, T, crop, crop) float32.

    Default (SEVERE action recognition): RandomResizedCrop(crop, scale, ratio), horizontal flip, colour jitter
    (brightness, contrast, saturation, hue). With ``resize_short_range=(lo, hi)`` (PySlowFast, Charades) the
    random resized crop is replaced by resizing the short side to a random size in [lo, hi] then a random
    ``crop``. ``color_jitter=None`` disables jitter; ``mean=std=None`` only scales to [0, 1].
    """
    ops = _spatial_ops(crop, scale, ratio, resize_short_range, resize_short_inverse_uniform, hflip)
    if color_jitter is not None and any(color_jitter):
        ops.append(v2.ColorJitter(*color_jitter))
    return ClipTransform(v2.Compose(ops), _ToModelInput(mean, std, channel_order))


def test_transform(resize_short: int = 128, crop: int = 112, mean: Sequence[float] | None = IMAGENET_MEAN,
                   std: Sequence[float] | None = IMAGENET_STD, channel_order: str = "RGB",
                   spatial_crops: int = 1) -> ClipTransform:
    """Deterministic test view(s): short side -> ``resize_short``, then a centre crop (output (C, T, crop,
    crop)) or three crops along the long side (``spatial_crops=3``; output (3, C, T, crop, crop))."""
    if spatial_crops not in (1, 3):
        raise ValueError(f"spatial_crops must be 1 or 3, got {spatial_crops}")
    resize = v2.Resize(int(resize_short), antialias=True)
    if spatial_crops == 1:
        return ClipTransform(v2.Compose([resize, v2.CenterCrop(crop)]), _ToModelInput(mean, std, channel_order))
    return ClipTransform(v2.Compose([resize]), _ToModelInput(mean, std, channel_order), crops="three", crop=crop)


test_transform.__test__ = False  # a library function, not a pytest test (it starts with "test_")


class FrameErasing:
    """VideoMAE's random erasing, drawn per frame: timm's ``RandomErasing(p, max_count=1)`` applied to the
    (T, C, H, W) clip treats every frame as an image of a batch, so each frame is erased with probability ``p``
    in its own box (area U(0.02, 1/3), log aspect U(log 0.3, log 1/0.3), 10 attempts). timm draws the boxes
    here, on a one-channel canvas, with ``random`` seeded from this clip's torch generator (so the draws depend
    only on (seed, pass, sample)); the device fills them (``device_augment.erase_boxes``)."""

    def __init__(self, p: float):
        from timm.data.random_erasing import RandomErasing

        self.p = float(p)
        self._timm = RandomErasing(self.p, mode="const", max_count=1, device="cpu")

    def draw(self, frames: int, height: int, width: int) -> torch.Tensor:
        """(frames, 4) long: (top, left, height, width) per frame; height 0 = that frame is not erased."""
        import random

        canvas = torch.ones(frames, 1, height, width)
        state = random.getstate()
        random.seed(int(torch.randint(0, 2**62, (1,))))
        try:
            self._timm(canvas)
        finally:
            random.setstate(state)
        boxes = torch.zeros(frames, 4, dtype=torch.long)
        erased = canvas[:, 0] == 0
        for f in torch.nonzero(erased.flatten(1).any(1)).flatten().tolist():
            rows = torch.nonzero(erased[f].any(1)).flatten()
            cols = torch.nonzero(erased[f].any(0)).flatten()
            boxes[f] = torch.tensor([rows[0], cols[0], rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1])
        return boxes

    def __repr__(self):
        return f"FrameErasing(p={self.p})"


class SplitTrainTransform:
    """The worker half of a training augmentation whose other half runs batched on the model's device
    (``engine.device_augment.DeviceAugment``): ``spatial`` (crop/resize, flip) runs here on uint8 at training
    resolution; RandAugment, colour jitter and random erasing only draw their parameters here, in the same
    order of draws as the all-CPU ``v2.Compose`` pipeline, so a seed gives the same augmentation.

    ``__call__(frames) -> (uint8 (T, 3, crop, crop), params)``; ``params`` holds ``ra_ops`` (N,) long and
    ``ra_magnitudes`` (N,) float64 when RandAugment is on (``randaugment.draw(height, width)``),
    ``jitter_order`` (4,) long and ``jitter_factors`` (4,) float (NaN: op off) when jitter is on,
    ``erase_boxes`` (T, 4) long (top, left, height, width per frame; height 0: not erased) when erasing is on
    (``FrameErasing``)."""

    def __init__(self, spatial: v2.Transform, color_jitter: Sequence[float] | None = None, erase_p: float = 0.0,
                 randaugment=None):
        self.spatial, self.randaugment = spatial, randaugment
        self.jitter = v2.ColorJitter(*color_jitter) if color_jitter is not None and any(color_jitter) else None
        self.erase = FrameErasing(erase_p) if erase_p and erase_p > 0 else None

    def __call__(self, clip):
        video = self.spatial(as_video_tensor(clip)).as_subclass(torch.Tensor).contiguous()
        params = {}
        if self.randaugment is not None:
            params["ra_ops"], params["ra_magnitudes"] = self.randaugment.draw(*video.shape[-2:])
        if self.jitter is not None:
            p = self.jitter.make_params([])
            params["jitter_order"] = p["fn_idx"].to(torch.long)
            params["jitter_factors"] = torch.tensor([float("nan") if p[k] is None else float(p[k]) for k in
                                                     ("brightness_factor", "contrast_factor", "saturation_factor",
                                                      "hue_factor")], dtype=torch.float32)
        if self.erase is not None:
            params["erase_boxes"] = self.erase.draw(video.shape[0], *video.shape[-2:])
        return video, params

    def __repr__(self):
        return (f"SplitTrainTransform(spatial={self.spatial}, randaugment={self.randaugment}, jitter={self.jitter}, "
                f"erase={self.erase})")


def split_train_transform(crop: int = 112, scale: Sequence[float] = (0.08, 1.0), hflip: bool = True,
                          color_jitter: Sequence[float] | None = (0.4, 0.4, 0.4, 0.2),
                          ratio: Sequence[float] = (3 / 4, 4 / 3), resize_short_range: Sequence[int] | None = None,
                          randaugment=None, erase_p: float = 0.0,
                          resize_short_inverse_uniform: bool = False) -> SplitTrainTransform:
    """``train_transform``'s augmentation (plus the ViT track's RandAugment and random erasing) as a
    worker half (spatial on uint8) and parameters for the device half. ``randaugment``: the ViT track's
    RandAugment (``engine.transforms.RandAugmentTimm``; its ``draw`` runs here, after the flip, and the
    device applies the ops)."""
    ops = _spatial_ops(crop, scale, ratio, resize_short_range, resize_short_inverse_uniform, hflip)
    return SplitTrainTransform(v2.Compose(ops), color_jitter, erase_p, randaugment=randaugment)


class TestViews:
    """The deterministic test views of one video from its decoded frames, each distinct frame resized once:
    short side -> ``resize_short``, then a centre crop or three crops along the long side (as
    ``test_transform``). Output uint8 (clips * crops, T, 3, crop, crop), clip-major; the device normalises."""

    def __init__(self, resize_short: int, crop: int, spatial_crops: int = 1):
        if spatial_crops not in (1, 3):
            raise ValueError(f"spatial_crops must be 1 or 3, got {spatial_crops}")
        self.resize_short, self.crop, self.spatial_crops = int(resize_short), int(crop), int(spatial_crops)

    def __call__(self, frames: np.ndarray, inverse: np.ndarray) -> torch.Tensor:
        """``frames`` (U, H, W, 3) uint8: the distinct frames; ``inverse`` (clips, T): each clip frame's row."""
        from torchvision.transforms.v2 import functional as TF

        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        x = TF.resize(x, [self.resize_short], antialias=True)
        if self.spatial_crops == 1:
            x = TF.center_crop(x, [self.crop, self.crop])[None]        # (1, U, 3, c, c)
        else:
            x = torch.stack(three_crops(x, self.crop))                 # (3, U, 3, c, c)
        inv = torch.as_tensor(np.asarray(inverse, dtype=np.int64))
        views = x[:, inv]                                              # (crops, clips, T, 3, c, c)
        return views.transpose(0, 1).reshape(-1, *views.shape[2:]).contiguous()


TestViews.__test__ = False  # not a pytest class
