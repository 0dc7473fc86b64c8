"""The on-device half of the training augmentation: batched, with each sample's own random parameters.

Workers decode, crop and flip on uint8 at training resolution and ship uint8 clips plus the parameters they
drew for the rest (``video.transforms.SplitTrainTransform``); here, on the model's device and for the whole
batch at once: RandAugment on uint8 (ViT track; ``device_randaugment``), colour jitter (brightness, contrast,
saturation, hue in each sample's own order, the torchvision ``ColorJitter`` kernels' arithmetic on float
images), scaling to [0, 1], normalisation, channel order, and random erasing (VideoMAE's: a box per
frame, per-pixel noise after normalising).

Own batched ops rather than kornia or a per-sample torchvision loop: kornia's ``ColorJiggle``/``ColorJitter``
draw their own parameters and differ from torchvision's hue/contrast arithmetic, so the distributions would
change; a per-sample loop of torchvision kernels launches ``4 x batch`` small kernels (bench/RESULTS.md has
the measured comparison). Index sets per op are built on the host from the (CPU) parameters, so nothing here
waits for the device.
"""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2.functional._color import _hsv_to_rgb, _rgb_to_hsv

JITTER_OPS = ("brightness", "contrast", "saturation", "hue")  # ids 0..3, as torchvision's ColorJitter


def _blend(x: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    return (ratio * x + (1.0 - ratio) * other).clamp_(0.0, 1.0)


def _per_sample(f: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return f.to(x.dtype).view(-1, *([1] * (x.dim() - 1)))


def adjust_brightness(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return (x * _per_sample(f, x)).clamp_(0.0, 1.0)


def adjust_contrast(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Blend with each frame's mean grey level (torchvision: per image, i.e. per frame of a clip)."""
    mean = F.rgb_to_grayscale(x).mean(dim=(-3, -2, -1), keepdim=True)
    return _blend(x, mean, _per_sample(f, x))


def adjust_saturation(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _blend(x, F.rgb_to_grayscale(x), _per_sample(f, x))


def adjust_hue(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    hsv = _rgb_to_hsv(x)
    h, s, v = hsv.unbind(dim=-3)
    h = (h + _per_sample(f, h)).remainder_(1.0)
    return _hsv_to_rgb(torch.stack((h, s, v), dim=-3))


_KERNELS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)


def color_jitter(x: torch.Tensor, order: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Colour jitter of a batch ``x`` (B, T, 3, H, W) float in [0, 1].

    ``order`` (B, 4) long: each sample's op ids in application order (torchvision's ``fn_idx``);
    ``factors`` (B, 4): brightness, contrast, saturation, hue factors; NaN = that op is off. Both may live
    on the CPU (they come from the workers); only small index tensors go to ``x``'s device."""
    order, factors = order.cpu(), factors.cpu()
    x = x.clone()
    for k in range(order.shape[1]):
        for op in range(len(JITTER_OPS)):
            sel = torch.nonzero((order[:, k] == op) & ~torch.isnan(factors[:, op])).flatten()
            if len(sel) == 0:
                continue
            idx = sel.to(x.device, non_blocking=True)
            f = factors[sel, op].to(x.device, non_blocking=True)
            x[idx] = _KERNELS[op](x[idx], f)
    return x


ERASE_MODES = ("pixel", "const")  # timm/VideoMAE --remode: per-pixel N(0, 1) noise, or 0 (after normalising)


def _erase_mode(mode: str) -> str:
    if mode not in ERASE_MODES:
        raise ValueError(f"erase mode must be one of {ERASE_MODES}, got {mode!r}")
    return mode


def erase_boxes(x: torch.Tensor, boxes: torch.Tensor, mode: str = "const",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Random erasing of ``x`` (B, C, T, H, W) in ``boxes`` (B, T, 4) = (top, left, height, width) per frame
    (height 0 = not erased); a (B, 4) box applies to every frame. ``mode`` "pixel" fills with standard normal
    noise per pixel and channel (VideoMAE's ``--remode pixel``, drawn from ``generator`` on ``x``'s device),
    "const" with 0."""
    _erase_mode(mode)
    boxes = boxes.to(x.device, non_blocking=True)
    if boxes.dim() == 2:
        boxes = boxes[:, None].expand(-1, x.shape[2], -1)
    h, w = x.shape[-2:]
    rows = torch.arange(h, device=x.device).view(1, 1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, 1, w)
    top, left, bh, bw = (boxes[..., i, None, None] for i in range(4))
    inside = ((rows >= top) & (rows < top + bh) & (cols >= left) & (cols < left + bw))[:, None]  # (B, 1, T, H, W)
    if mode == "const":
        return x.masked_fill(inside, 0.0)
    if generator is None:
        raise ValueError("pixel-mode erasing needs a generator (its noise must be reproducible)")
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return torch.where(inside, noise, x)


class DeviceAugment:
    """uint8 clips (B, T, 3, H, W) + their worker-drawn parameters -> model input (B, C, T, H, W) float."""

    def __init__(self, mean, std, channel_order: str = "RGB", device=None, randaugment_fill=None,
                 erase_mode: str = "const"):
        self.randaugment_fill = randaugment_fill  # the fill the worker's RandAugment was built with
        self.erase_mode = _erase_mode(erase_mode)
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32, device=device).view(1, 1, 3, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32, device=device).view(1, 1, 3, 1, 1)
        self.bgr = channel_order == "BGR"

    def __call__(self, clips: torch.Tensor, params: dict | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """``generator``: on the clips' device, for the erasing noise (drawn per batch: a batch is fixed by
        (seed, pass, step), so the noise depends on nothing else)."""
        params = params or {}
        if "ra_ops" in params:
            from .device_randaugment import rand_augment

            clips = rand_augment(clips, params["ra_ops"], params["ra_magnitudes"], self.randaugment_fill)
        x = clips.to(torch.float32).div_(255.0)
        if "jitter_order" in params:
            x = color_jitter(x, params["jitter_order"], params["jitter_factors"])
        if self.mean is not None:
            x = x.sub_(self.mean).div_(self.std)
        if self.bgr:  # after normalising with RGB statistics, as the reference `switch_channels` does
            x = x.flip(2)
        x = x.transpose(1, 2)  # (B, T, C, H, W) -> (B, C, T, H, W)
        if "erase_boxes" in params:
            x = erase_boxes(x, params["erase_boxes"], self.erase_mode, generator)
        return x.contiguous()
