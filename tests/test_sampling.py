"""Clip sampling: the SEVERE (fps re-timing) and PySlowFast (frame stride) rules, edge cases included."""

from __future__ import annotations

import numpy as np
import pytest

from severe_bench.video.sampling import (
    clamp_pad, loop_pad, retimed_indices, test_clip_indices, train_clip_indices,
)


def rng(seed=0):
    return np.random.default_rng(seed)


def test_same_fps_gives_consecutive_frames_from_a_random_start():
    starts = set()
    for seed in range(40):
        idx = train_clip_indices(100, 16.0, 32, 16.0, rng(seed))
        assert idx.shape == (32,) and idx.dtype == np.int64
        np.testing.assert_array_equal(np.diff(idx), 1)
        assert 0 <= idx[0] and idx[-1] <= 99
        starts.add(int(idx[0]))
    assert min(starts) <= 10 and max(starts) >= 58  # uniform over [0, 68]
    assert len(starts) > 20


def test_deterministic_given_rng():
    a = train_clip_indices(300, 25.0, 32, 16.0, rng(7))
    b = train_clip_indices(300, 25.0, 32, 16.0, rng(7))
    c = train_clip_indices(300, 25.0, 32, 16.0, rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("video_fps", [25.0, 29.97, 30.0, 50.0])
def test_higher_fps_skips_frames_at_the_fractional_stride(video_fps):
    step = video_fps / 16.0
    idx = train_clip_indices(1000, video_fps, 32, 16.0, rng(1))
    diffs = np.diff(idx)
    assert set(diffs) <= {int(np.floor(step)), int(np.ceil(step))}
    assert (idx[-1] - idx[0]) == pytest.approx(31 * step, abs=1.0)  # 2 s of video for 32 frames at 16 fps


def test_lower_fps_repeats_frames():
    idx = train_clip_indices(100, 8.0, 32, 16.0, rng(2))
    assert set(np.diff(idx)) <= {0, 1}
    assert (np.diff(idx) == 0).sum() in (15, 16)  # every source frame shown twice (a random half-frame start)
    np.testing.assert_array_equal(retimed_indices(4, 8.0, 16.0), [0, 0, 1, 1, 2, 2, 3])


def test_unknown_video_fps_means_stride_one():
    for fps in (0, None, float("nan")):
        np.testing.assert_array_equal(np.diff(train_clip_indices(50, fps, 8, 16.0, rng())), 1)


def test_short_video_loops_from_the_start_by_default():
    idx = train_clip_indices(10, 16.0, 32, 16.0, rng())
    np.testing.assert_array_equal(idx, np.resize(np.arange(10), 32))
    idx = train_clip_indices(10, 25.0, 16, 16.0, rng())  # re-timed frames 0,1,3,4,6,7,9 then again
    np.testing.assert_array_equal(idx[:8], [0, 1, 3, 4, 6, 7, 9, 0])


def test_short_video_clamp_rule_repeats_the_last_frame():
    idx = train_clip_indices(10, 16.0, 32, 16.0, rng(), short_video="clamp")
    np.testing.assert_array_equal(idx, np.r_[np.arange(10), np.full(22, 9)])
    with pytest.raises(ValueError):
        train_clip_indices(10, 16.0, 32, 16.0, rng(), short_video="mirror")


def test_single_frame_video():
    np.testing.assert_array_equal(train_clip_indices(1, 30.0, 8, 16.0, rng()), np.zeros(8))
    np.testing.assert_array_equal(test_clip_indices(1, 30.0, 8, 16.0, 3), np.zeros((3, 8)))
    np.testing.assert_array_equal(train_clip_indices(1, 30.0, 4, rng=rng(), stride=8), np.zeros(4))


def test_test_clips_are_evenly_spaced_over_the_whole_video():
    clips = test_clip_indices(250, 25.0, 32, 16.0, 10)
    assert clips.shape == (10, 32)
    timeline = retimed_indices(250, 25.0, 16.0)
    assert clips[0, 0] == 0 and clips[-1, -1] == timeline[-1]  # first clip at the start, last at the end
    starts = clips[:, 0]
    assert np.all(np.diff(starts) > 0)
    gaps = np.diff(np.searchsorted(timeline, starts))
    assert gaps.max() - gaps.min() <= 1  # even spacing on the re-timed video
    for clip in clips:
        assert set(np.diff(clip)) <= {1, 2}


def test_test_clips_when_the_video_is_shorter_than_one_clip():
    clips = test_clip_indices(20, 16.0, 32, 16.0, 10)
    assert clips.shape == (10, 32)
    np.testing.assert_array_equal(clips, np.tile(loop_pad(np.arange(20), 32), (10, 1)))
    clips = test_clip_indices(20, 16.0, 32, 16.0, 4, short_video="clamp")
    np.testing.assert_array_equal(clips[0], clamp_pad(np.arange(20), 32))


def test_test_clips_with_one_clip_and_exact_fit():
    np.testing.assert_array_equal(test_clip_indices(32, 16.0, 32, 16.0, 1), [np.arange(32)])
    np.testing.assert_array_equal(test_clip_indices(32, 16.0, 32, 16.0, 3), np.tile(np.arange(32), (3, 1)))


# --- frame stride (PySlowFast / Charades) ----------------------------------------------------------

def test_stride_train_takes_every_kth_frame():
    for seed in range(20):
        idx = train_clip_indices(500, 24.0, 32, rng=rng(seed), stride=8)
        np.testing.assert_array_equal(np.diff(idx), 8)
        assert 0 <= idx[0] <= 500 - 249


def test_stride_ignores_fps():
    a = train_clip_indices(500, 24.0, 8, rng=rng(3), stride=4)
    b = train_clip_indices(500, 60.0, 8, rng=rng(3), stride=4)
    np.testing.assert_array_equal(a, b)


def test_stride_test_clips_cover_first_to_last_frame():
    clips = test_clip_indices(500, 24.0, 32, num_clips=10, stride=8)
    assert clips.shape == (10, 32)
    assert clips[0, 0] == 0 and clips[-1, -1] == 499
    np.testing.assert_array_equal(np.diff(clips, axis=1), 8)
    np.testing.assert_array_equal(test_clip_indices(500, 24.0, 32, num_clips=1, stride=8)[0, 0], 126)


def test_stride_short_video_clamps_like_pyslowfast():
    for seed in range(10):
        idx = train_clip_indices(50, 24.0, 32, rng=rng(seed), stride=8)
        starts = {int(idx[k] - 8 * k) for k in range(32) if 0 < idx[k] < 49}
        assert len(starts) <= 1  # one start, clamped into the video
        if starts:
            start = starts.pop()
            assert 50 - 249 <= start <= 0
            np.testing.assert_array_equal(idx, np.clip(start + 8 * np.arange(32), 0, 49))
    clips = test_clip_indices(50, 24.0, 32, num_clips=3, stride=8)
    np.testing.assert_array_equal(clips[0], np.minimum(np.arange(32) * 8, 49))
    np.testing.assert_array_equal(clips, np.tile(clips[0], (3, 1)))


def test_stride_short_video_loop_rule():
    idx = test_clip_indices(50, 24.0, 16, num_clips=2, stride=8, short_video="loop")
    np.testing.assert_array_equal(idx[0], np.resize(np.arange(0, 50, 8), 16))
    idx = train_clip_indices(50, 24.0, 16, rng=rng(5), stride=8, short_video="loop")
    assert set(np.diff(idx)) <= {8, -(idx.max() - idx.min())}


def test_argument_errors():
    with pytest.raises(ValueError):
        train_clip_indices(100, 25.0, 32, 16.0, rng(), stride=8)  # both
    with pytest.raises(ValueError):
        train_clip_indices(100, 25.0, 32, rng=rng())  # neither
    with pytest.raises(ValueError):
        train_clip_indices(0, 25.0, 32, 16.0, rng())
    with pytest.raises(ValueError):
        test_clip_indices(100, 25.0, 32, 16.0, 0)
    with pytest.raises(ValueError):
        test_clip_indices(100, 25.0, 32, num_clips=2, stride=2.5)
