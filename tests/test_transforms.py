"""Clip transforms: one set of random parameters per clip, right shapes, normalisation and channel order."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from severe_bench.video.transforms import IMAGENET_MEAN, IMAGENET_STD, train_transform
from severe_bench.video import transforms as T


def textured_frame(h=60, w=80, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frame[:, : w // 3, 0] = 255  # asymmetric, so a flip or a different crop shows
    return frame


def identical_clip(t=8, **kw) -> np.ndarray:
    return np.repeat(textured_frame(**kw)[None], t, axis=0)


@pytest.mark.parametrize("seed", range(5))
def test_train_augmentation_is_the_same_for_every_frame(seed):
    torch.manual_seed(seed)
    out = train_transform(32)(identical_clip())
    assert out.shape == (3, 8, 32, 32) and out.dtype == torch.float32
    for t in range(1, 8):
        torch.testing.assert_close(out[:, t], out[:, 0], rtol=0, atol=0)


def test_train_augmentation_is_random_between_clips():
    transform = train_transform(32)
    torch.manual_seed(0)
    outs = [transform(identical_clip(t=2)) for _ in range(6)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_train_short_side_jitter_variant():
    torch.manual_seed(1)
    transform = train_transform(48, resize_short_range=(56, 64), color_jitter=None, mean=None, std=None)
    out = transform(identical_clip(t=4))
    assert out.shape == (3, 4, 48, 48)
    for t in range(1, 4):
        torch.testing.assert_close(out[:, t], out[:, 0], rtol=0, atol=0)
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_numpy_and_tensor_inputs_agree():
    clip = identical_clip(t=3)
    transform = T.test_transform(resize_short=40, crop=32)
    from_numpy = transform(clip)
    from_tensor = transform(torch.from_numpy(clip).permute(0, 3, 1, 2))
    torch.testing.assert_close(from_numpy, from_tensor)
    with pytest.raises(ValueError):
        transform(clip[..., :2])


def test_test_transform_normalises_a_flat_colour_exactly():
    colour = np.array([200, 100, 50], dtype=np.uint8)
    clip = np.broadcast_to(colour, (4, 36, 48, 3)).copy()
    out = T.test_transform(resize_short=40, crop=32)(clip)
    assert out.shape == (3, 4, 32, 32)
    expected = (colour / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out.mean(dim=(1, 2, 3)).numpy(), expected, atol=1e-5)
    raw = T.test_transform(resize_short=40, crop=32, mean=None, std=None)(clip)
    np.testing.assert_allclose(raw.mean(dim=(1, 2, 3)).numpy(), colour / 255.0, atol=1e-6)


def test_bgr_swaps_channels_after_normalising():
    clip = identical_clip(t=2)
    rgb = T.test_transform(40, 32, channel_order="RGB")(clip)
    bgr = T.test_transform(40, 32, channel_order="BGR")(clip)
    torch.testing.assert_close(bgr, rgb.flip(0))
    with pytest.raises(ValueError):
        T.test_transform(40, 32, channel_order="YUV")


def _column_coded_clip(h, w, t=2):
    """Each pixel's red value is its column (scaled), so a crop's mean red tells where it was taken."""
    cols = np.linspace(0, 255, w).astype(np.uint8)
    frame = np.zeros((h, w, 3), dtype=np.uint8)
    frame[..., 0] = cols[None, :]
    frame[..., 1] = np.linspace(0, 255, h).astype(np.uint8)[:, None]
    return np.repeat(frame[None], t, axis=0)


def test_three_crops_left_centre_right_on_landscape():
    out = T.test_transform(resize_short=32, crop=32, mean=None, std=None, spatial_crops=3)(_column_coded_clip(48, 96))
    assert out.shape == (3, 3, 2, 32, 32)
    red = out[:, 0].mean(dim=(1, 2, 3))
    assert red[0] < red[1] < red[2]  # left, centre, right
    green = out[:, 1].mean(dim=(1, 2, 3))
    torch.testing.assert_close(green, green[:1].expand(3))  # same rows: the short side is centred


def test_three_crops_top_centre_bottom_on_portrait():
    out = T.test_transform(resize_short=32, crop=32, mean=None, std=None, spatial_crops=3)(_column_coded_clip(96, 48))
    green = out[:, 1].mean(dim=(1, 2, 3))
    assert green[0] < green[1] < green[2]


def test_centre_crop_sits_in_the_middle():
    out = T.test_transform(resize_short=32, crop=16, mean=None, std=None)(_column_coded_clip(32, 64))
    red = out[0].mean().item() * 255
    assert abs(red - 127.5) < 6


def test_bad_arguments():
    with pytest.raises(ValueError):
        T.test_transform(40, 32, spatial_crops=2)
    with pytest.raises(ValueError):
        train_transform(32, mean=IMAGENET_MEAN, std=None)
