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
    ops.append(v2.RandAugment(num_ops=int(ra["num_ops"]), magnitude=int(ra["magnitude"])))
    inner = ClipTransform(v2.Compose(ops), _ToModelInput(**norm_kwargs(norm)))
    p = float(aug.get("random_erasing", 0) or 0)
    return _EraseThenKeep(inner, p) if p > 0 else inner


def build_test_transform(proto: dict, norm: dict):
    test = proto["test"]
    return test_transform(resize_short=int(test["resize"]), crop=int(test["crop"]),
                          spatial_crops=int(test.get("spatial_crops", 1)), **norm_kwargs(norm))
