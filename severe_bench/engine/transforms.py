"""Protocol values -> clip transforms (the transforms themselves live in ``severe_bench.video.transforms``)."""

from __future__ import annotations

import torch
from torchvision.transforms import v2

from ..video.transforms import SplitTrainTransform, TestViews, split_train_transform, test_transform
from .device_augment import DeviceAugment


def norm_kwargs(norm: dict) -> dict:
    """The effective normalisation values (``RunContext.normalisation``) as ``_ToModelInput`` keywords."""
    return {"mean": norm.get("mean"), "std": norm.get("std"), "channel_order": norm.get("channel_order", "RGB")}


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

    def draw(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One clip's random draws: op ids (``device_randaugment.OPS`` index, ``SKIPPED`` when the op is not
        applied) and the signed magnitudes handed to the ops, (num_ops,) long and float64. The workers ship
        these; ``device_randaugment.rand_augment`` applies them batched on the device."""
        from .device_randaugment import OP_ID, SKIPPED

        ops, mags = [], []
        self.levels = []
        for _ in range(self.num_ops):
            op, (magnitudes_fn, signed) = self._get_random_item(self._AUGMENTATION_SPACE)
            if torch.rand(()) >= self.prob:
                self.levels.append(None)
                ops.append(SKIPPED)
                mags.append(0.0)
                continue
            level = self.level + (self.level_std * torch.randn(()).item() if self.level_std > 0 else 0.0)
            level = min(max(level, 0.0), 10.0)
            self.levels.append(level)
            table = magnitudes_fn(self.num_magnitude_bins, height, width)
            magnitude = 0.0
            if table is not None:
                lo = int(level)
                hi = min(lo + 1, self.num_magnitude_bins - 1)
                magnitude = float(table[lo] + (table[hi] - table[lo]) * (level - lo))
                if signed and torch.rand(()) <= 0.5:
                    magnitude *= -1
            ops.append(OP_ID[op])
            mags.append(magnitude)
        return torch.tensor(ops, dtype=torch.long), torch.tensor(mags, dtype=torch.float64)

    def forward(self, *inputs):
        """The per-clip CPU path (the reference the batched device ops are tested against)."""
        from torchvision.transforms.v2 import functional as F

        from .device_randaugment import OPS, SKIPPED

        flat, video = self._flatten_and_extract_image_or_video(inputs)
        ops, mags = self.draw(*F.get_size(video))
        for op, magnitude in zip(ops.tolist(), mags.tolist()):
            if op != SKIPPED:
                video = self._apply_image_or_video_transform(video, OPS[op], magnitude,
                                                             interpolation=self.interpolation, fill=self._fill)
        return self._unflatten_and_insert_image_or_video(flat, video)


def build_train_transform(proto: dict, norm: dict | None = None) -> SplitTrainTransform:
    """The worker half of the training augmentation (decode -> crop/flip on uint8); RandAugment, colour
    jitter and random erasing draw their parameters here and run on the device (``build_device_augment``).
    CNN track: random resized crop (or short-side jitter + random crop), flip, colour jitter. ViT track
    (VideoMAE): random resized crop, flip, RandAugment on uint8 frames, then random erasing."""
    aug = proto.get("train_augment", {})
    ra = aug.get("randaugment")
    crop = int(proto["input"]["crop"])
    short = aug.get("short_side_scale")
    return split_train_transform(
        crop=crop, scale=tuple(aug.get("random_resized_crop_scale", (0.08, 1.0))), hflip=bool(aug.get("hflip", True)),
        color_jitter=None if aug.get("randaugment") else aug.get("color_jitter"),
        resize_short_range=tuple(short) if short and not aug.get("randaugment") else None,
        resize_short_inverse_uniform=bool(aug.get("short_side_inverse_uniform", False)),
        randaugment=RandAugmentTimm(ra["num_ops"], ra["magnitude"], ra.get("magnitude_std", 0.0), fill=mean_fill(norm))
        if ra else None,
        erase_p=float(aug.get("random_erasing", 0) or 0) if aug.get("randaugment") else 0.0,
    )


def mean_fill(norm: dict | None) -> list[int] | None:
    mean = (norm or {}).get("mean")
    return [int(round(255 * m)) for m in mean] if mean else None  # timm/VideoMAE fill with the mean colour


def build_device_augment(norm: dict, device=None, proto: dict | None = None) -> DeviceAugment:
    """The device half: RandAugment, jitter, scaling, normalisation, channel order, erasing, batched."""
    aug = (proto or {}).get("train_augment", {})
    return DeviceAugment(**norm_kwargs(norm), device=device, randaugment_fill=mean_fill(norm),
                         erase_mode=aug.get("random_erasing_mode", "const"))


def clip_sampling(proto: dict, part: str) -> dict:
    """The sampling values ``TrainClips`` (``part="input"``) or ``TestClips`` (``part="test"``) take: the
    part's own, the protocol's ``short_video`` rule, and the decode size: with ``decode_at_test_resize``
    (the ``fast_decode`` profile) frames are resized while decoding to the test short side (``test.resize``),
    for training and test clips alike."""
    values = {**proto[part], "short_video": proto.get("short_video")}
    if proto.get("decode_at_test_resize"):
        values["decode_short_side"] = int(proto["test"]["resize"])
    return values


def build_test_transform(proto: dict, norm: dict):
    test = proto["test"]
    return test_transform(resize_short=int(test["resize"]), crop=int(test["crop"]),
                          spatial_crops=int(test.get("spatial_crops", 1)), **norm_kwargs(norm))


def build_test_views(proto: dict) -> TestViews:
    """Test views shipped as uint8 (each distinct frame resized once); the device normalises them."""
    test = proto["test"]
    return TestViews(int(test["resize"]), int(test["crop"]), int(test.get("spatial_crops", 1)))
