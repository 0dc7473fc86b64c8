"""RandAugment on the device, batched: each clip of a uint8 batch gets its own worker-drawn ops and magnitudes.

The worker only draws (``engine.transforms.RandAugmentTimm.draw``: op ids and signed magnitudes, in the same
order of draws as the all-CPU transform); here each op slot runs once per op kind over the clips that drew it,
with per-clip magnitudes. The kernels are torchvision's ``transforms.v2`` uint8 arithmetic written for a
per-clip factor (so the distributions and the results are those of ``v2.RandAugment``'s ops, tested against
them clip by clip); the five geometric ops of a slot share one ``grid_sample`` with a matrix per clip. Every
frame of a clip gets the same ops (frames are folded into channels). Index sets are built on the host from
the (CPU) parameters: nothing here waits for the device.

timm's own ``RandAugment`` is not used: it works on PIL images one at a time with the process-wide ``random``
module, so it can neither batch on the device nor give one draw per (seed, pass, sample).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf
from torchvision.transforms.v2 import RandAugment
from torchvision.transforms.v2 import functional as F
from torchvision.transforms.v2.functional._geometry import _get_inverse_affine_matrix

OPS = tuple(RandAugment._AUGMENTATION_SPACE)  # op ids: index in torchvision's augmentation space
OP_ID = {name: i for i, name in enumerate(OPS)}
SKIPPED = -1                                  # the op slot was drawn but not applied (probability 1 - prob)
GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


def _per_clip(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (like.dim() - 1)))


def _grey(x: torch.Tensor) -> torch.Tensor:
    """torchvision's uint8 grey level (float, floored), one channel."""
    r, g, b = x.unbind(dim=-3)
    return r.mul(0.2989).add_(g, alpha=0.587).add_(b, alpha=0.114).unsqueeze(-3).floor_()


def _blend(x: torch.Tensor, other: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """torchvision ``_blend`` on uint8 with a ratio per clip (float32, as its scalar becomes)."""
    r = _per_clip(ratio.to(torch.float32), x)
    one_minus = _per_clip((1.0 - ratio.to(torch.float64)).to(torch.float32), x)
    return torch.addcmul(x.mul(r), other, one_minus).clamp_(0, 255).to(torch.uint8)


def brightness(x, m):
    return (x.mul(_per_clip((1.0 + m).to(torch.float32), x))).clamp_(0, 255).to(torch.uint8)


def color(x, m):
    return _blend(x, _grey(x), 1.0 + m)


def contrast(x, m):
    mean = _grey(x).mean(dim=(-3, -2, -1), keepdim=True)  # per frame, as torchvision per image
    return _blend(x, mean, 1.0 + m)


def sharpness(x, m):
    s, t, c, h, w = x.shape
    if h <= 2 or w <= 2:
        return x
    a, b = 1.0 / 13.0, 5.0 / 13.0
    kernel = torch.tensor([[a, a, a], [a, b, a], [a, a, a]], dtype=torch.float32, device=x.device).expand(c, 1, 3, 3)
    out = x.reshape(-1, c, h, w).to(torch.float32)
    blurred = nnf.conv2d(out, kernel, groups=c).round_()
    view = out[..., 1:-1, 1:-1]
    alpha = (1.0 - (1.0 + m).to(torch.float64)).to(torch.float32).repeat_interleave(t)
    view.addcmul_(blurred.sub_(view), alpha.view(-1, 1, 1, 1))
    return out.clamp_(0, 255).to(torch.uint8).reshape(s, t, c, h, w)


def posterize(x, m):
    bits = m.to(torch.int64)  # torchvision: bits=int(magnitude)
    mask = torch.where(bits >= 8, torch.full_like(bits, 255), ((1 << bits) - 1) << (8 - bits)).to(torch.uint8)
    return x & _per_clip(mask, x)


def solarize(x, m):
    threshold = _per_clip((255.0 * m.to(torch.float64)).to(torch.float32), x)
    return torch.where(x >= threshold, 255 - x, x)


def autocontrast(x, m):
    return F.autocontrast(x)  # torchvision's kernel is already batched over leading dims (per channel image)


def equalize(x, m):
    return F.equalize(x)


_COLOUR = {"Brightness": brightness, "Color": color, "Contrast": contrast, "Sharpness": sharpness,
           "Posterize": posterize, "Solarize": solarize, "AutoContrast": autocontrast, "Equalize": equalize}


def affine_matrix(op: str, magnitude: float, height: int, width: int) -> list[float]:
    """The inverse affine matrix torchvision's RandAugment uses for ``op`` (v2 ``_apply_image_or_video_transform``:
    shears about the top-left corner, translations by whole pixels, rotation about the centre)."""
    corner = [-0.5 * width, -0.5 * height]
    if op == "ShearX":
        return _get_inverse_affine_matrix(corner, 0.0, [0.0, 0.0], 1.0, [math.degrees(math.atan(magnitude)), 0.0])
    if op == "ShearY":
        return _get_inverse_affine_matrix(corner, 0.0, [0.0, 0.0], 1.0, [0.0, math.degrees(math.atan(magnitude))])
    if op == "TranslateX":
        return _get_inverse_affine_matrix([0.0, 0.0], 0.0, [float(int(magnitude)), 0.0], 1.0, [0.0, 0.0])
    if op == "TranslateY":
        return _get_inverse_affine_matrix([0.0, 0.0], 0.0, [0.0, float(int(magnitude))], 1.0, [0.0, 0.0])
    if op == "Rotate":
        return _get_inverse_affine_matrix([0.0, 0.0], -(magnitude % 360), [0.0, 0.0], 1.0, [0.0, 0.0])
    raise ValueError(f"not a geometric op: {op!r}")


def affine(x: torch.Tensor, matrices: torch.Tensor, fill) -> torch.Tensor:
    """Bilinear warp of uint8 clips (S, T, C, H, W), matrix (S, 2, 3) per clip, outside filled with ``fill``
    (torchvision ``_apply_grid_transform``: a mask channel, then ``mask * (img - fill) + fill``, rounded)."""
    s, t, c, h, w = x.shape
    theta = matrices.to(device=x.device, dtype=torch.float32)
    base = torch.empty(1, h, w, 3, dtype=torch.float32, device=x.device)
    base[..., 0].copy_(torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=x.device))
    base[..., 1].copy_(torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=x.device).unsqueeze_(-1))
    base[..., 2].fill_(1)
    scale = torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float32, device=x.device)
    grid = base.view(1, h * w, 3).expand(s, -1, -1).bmm(theta.transpose(1, 2).div(scale)).view(s, h, w, 2)
    img = x.reshape(s, t * c, h, w).to(torch.float32)
    if fill is not None:
        img = torch.cat((img, torch.ones(s, 1, h, w, dtype=torch.float32, device=x.device)), dim=1)
    out = nnf.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if fill is not None:
        out, mask = out[:, :-1], out[:, -1:]
        fill_img = torch.tensor([float(v) for v in fill], dtype=torch.float32, device=x.device).repeat(t).view(1, -1, 1, 1)
        out = out.sub_(fill_img).mul_(mask).add_(fill_img)
    return out.round_().to(torch.uint8).reshape(s, t, c, h, w)


def rand_augment(clips: torch.Tensor, ops: torch.Tensor, magnitudes: torch.Tensor, fill=None) -> torch.Tensor:
    """RandAugment of a uint8 batch ``clips`` (B, T, 3, H, W) on its device.

    ``ops`` (B, N) long: each clip's op id per slot (``OPS`` index, ``SKIPPED`` = not applied); ``magnitudes``
    (B, N) float64: the signed magnitudes the worker drew (as ``v2.RandAugment`` passes them to its ops);
    ``fill``: per-channel fill for the geometric ops (None: zeros, as torchvision without a fill)."""
    ops, magnitudes = ops.cpu(), magnitudes.cpu().to(torch.float64)
    h, w = clips.shape[-2:]
    x = clips.clone()
    geometric_ids = torch.tensor([OP_ID[g] for g in GEOMETRIC])
    for k in range(ops.shape[1]):
        slot, mag = ops[:, k], magnitudes[:, k]
        geo = torch.nonzero(torch.isin(slot, geometric_ids)).flatten()
        if len(geo):
            mats = torch.tensor([affine_matrix(OPS[int(slot[i])], float(mag[i]), h, w) for i in geo.tolist()],
                                dtype=torch.float32).view(-1, 2, 3)
            idx = geo.to(x.device, non_blocking=True)
            x[idx] = affine(x[idx], mats, fill)
        for name, kernel in _COLOUR.items():
            sel = torch.nonzero(slot == OP_ID[name]).flatten()
            if len(sel):
                idx = sel.to(x.device, non_blocking=True)
                x[idx] = kernel(x[idx], mag[sel].to(x.device, non_blocking=True))
    return x
