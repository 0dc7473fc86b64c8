"""Protocol values -> clip transforms (the transforms themselves live in ``severe_bench.video.transforms``)."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from ..video.transforms import ClipTransform, _ToModelInput, test_transform, train_transform


def norm_kwargs(norm: dict) -> dict:
    """The effective normalisation values (``RunContext.normalisation``) as ``_ToModelInput`` keywords."""
    return {"mean": norm.get("mean"), "std": norm.get("std"), "channel_order": norm.get("channel_order", "RGB")}


class _EraseThenKeep:
    """Random erasing on the model input (C, T, H, W): one box for all frames of the clip."""

    def __init__(self, inner: ClipTransform, p: float):
        self.inner, self.erase = inner, v2.RandomErasing(p=p, value=0)

    def __call__(self, clip) -> torch.Tensor:
        x = self.inner(clip)  # (C, T, H, W)
        return self.erase(x.transpose(0, 1)).transpose(0, 1).contiguous()


class RandAugmentTimm(v2.RandAugment):
    """RandAugment on timm's magnitude scale (level / 10, as VideoMAE's ``rand-m7-n4-mstd0.5-inc1``): 11
    magnitude bins, and with ``magnitude_std`` > 0 the magnitude is drawn per clip from N(m, std), clipped to
    [0, 10] and rounded to a bin. One draw per call, so every frame of a clip gets the same ops."""

    def __init__(self, num_ops: int, magnitude: int, magnitude_std: float = 0.0):
        super().__init__(num_ops=int(num_ops), magnitude=int(magnitude), num_magnitude_bins=11)
        self.mean_magnitude, self.magnitude_std = int(magnitude), float(magnitude_std)

    def forward(self, *inputs):
        if self.magnitude_std > 0:
            m = torch.normal(float(self.mean_magnitude), self.magnitude_std, size=(1,)).item()
            self.magnitude = int(round(min(max(m, 0.0), 10.0)))
        return super().forward(*inputs)


def build_train_transform(proto: dict, norm: dict):
    aug = proto.get("train_augment", {})
    crop = int(proto["input"]["crop"])
    short = aug.get("short_side_scale")
    if not aug.get("randaugment"):
        return train_transform(
            crop=crop, scale=tuple(aug.get("random_resized_crop_scale", (0.08, 1.0))), hflip=bool(aug.get("hflip", True)),
            color_jitter=aug.get("color_jitter"), resize_short_range=tuple(short) if short else None,
            **norm_kwargs(norm),
        )
    # ViT track (VideoMAE): random resized crop, flip, RandAugment on uint8 frames, then random erasing.
    ra = aug["randaugment"]
    ops = [v2.RandomResizedCrop(crop, scale=tuple(aug.get("random_resized_crop_scale", (0.08, 1.0))), antialias=True)]
    if aug.get("hflip", True):
        ops.append(v2.RandomHorizontalFlip())
    ops.append(RandAugmentTimm(ra["num_ops"], ra["magnitude"], ra.get("magnitude_std", 0.0)))
    inner = ClipTransform(v2.Compose(ops), _ToModelInput(**norm_kwargs(norm)))
    p = float(aug.get("random_erasing", 0) or 0)
    return _EraseThenKeep(inner, p) if p > 0 else inner


def build_test_transform(proto: dict, norm: dict):
    test = proto["test"]
    return test_transform(resize_short=int(test["resize"]), crop=int(test["crop"]),
                          spatial_crops=int(test.get("spatial_crops", 1)), **norm_kwargs(norm))
