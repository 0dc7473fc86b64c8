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
    """RandAugment as timm's ``rand-m{M}-n{N}-mstd{S}`` that VideoMAE uses (``rand_augment.py``), on
    torchvision's ops: N ops drawn with replacement, **each applied with probability 0.5**, each at a level drawn
    from N(M, S) clipped to [0, 10] on timm's scale (level / 10 of the op's range: 11 bins, interpolated between
    them), random sign where the op has one; fill = the mean colour. One call per clip, so every frame of a clip
    gets the same ops (VideoMAE applies each op to the frame list). ``levels`` holds the last call's levels
    (None: op skipped)."""

    def __init__(self, num_ops: int, magnitude: float, magnitude_std: float = 0.0, prob: float = 0.5, fill=None):
        super().__init__(num_ops=int(num_ops), magnitude=int(round(magnitude)), num_magnitude_bins=11,
                         interpolation=v2.InterpolationMode.BILINEAR, fill=fill)
        self.level, self.level_std, self.prob = float(magnitude), float(magnitude_std), float(prob)
        self.levels: list = []

    def forward(self, *inputs):
        from torchvision.transforms.v2 import functional as F

        flat, video = self._flatten_and_extract_image_or_video(inputs)
        height, width = F.get_size(video)
        self.levels = []
        for _ in range(self.num_ops):
            op, (magnitudes_fn, signed) = self._get_random_item(self._AUGMENTATION_SPACE)
            if torch.rand(()) >= self.prob:
                self.levels.append(None)
                continue
            level = self.level + (self.level_std * torch.randn(()).item() if self.level_std > 0 else 0.0)
            level = min(max(level, 0.0), 10.0)
            self.levels.append(level)
            mags = magnitudes_fn(self.num_magnitude_bins, height, width)
            magnitude = 0.0
            if mags is not None:
                lo = int(level)
                hi = min(lo + 1, self.num_magnitude_bins - 1)
                magnitude = float(mags[lo] + (mags[hi] - mags[lo]) * (level - lo))
                if signed and torch.rand(()) <= 0.5:
                    magnitude *= -1
            video = self._apply_image_or_video_transform(video, op, magnitude, interpolation=self.interpolation,
                                                         fill=self._fill)
        return self._unflatten_and_insert_image_or_video(flat, video)


def build_train_transform(proto: dict, norm: dict):
    aug = proto.get("train_augment", {})
    crop = int(proto["input"]["crop"])
    short = aug.get("short_side_scale")
    if not aug.get("randaugment"):
        return train_transform(
            crop=crop, scale=tuple(aug.get("random_resized_crop_scale", (0.08, 1.0))), hflip=bool(aug.get("hflip", True)),
            color_jitter=aug.get("color_jitter"), resize_short_range=tuple(short) if short else None,
            resize_short_inverse_uniform=bool(aug.get("short_side_inverse_uniform", False)),
            **norm_kwargs(norm),
        )
    # ViT track (VideoMAE): random resized crop, flip, RandAugment on uint8 frames, then random erasing.
    ra = aug["randaugment"]
    ops = [v2.RandomResizedCrop(crop, scale=tuple(aug.get("random_resized_crop_scale", (0.08, 1.0))), antialias=True)]
    if aug.get("hflip", True):
        ops.append(v2.RandomHorizontalFlip())
    mean = norm.get("mean")
    fill = [int(round(255 * m)) for m in mean] if mean else None  # timm/VideoMAE fill with the mean colour
    ops.append(RandAugmentTimm(ra["num_ops"], ra["magnitude"], ra.get("magnitude_std", 0.0), fill=fill))
    inner = ClipTransform(v2.Compose(ops), _ToModelInput(**norm_kwargs(norm)))
    p = float(aug.get("random_erasing", 0) or 0)
    return _EraseThenKeep(inner, p) if p > 0 else inner


def build_test_transform(proto: dict, norm: dict):
    test = proto["test"]
    return test_transform(resize_short=int(test["resize"]), crop=int(test["crop"]),
                          spatial_crops=int(test.get("spatial_crops", 1)), **norm_kwargs(norm))
