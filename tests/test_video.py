"""Video reader: real encoded files (mp4/libx264, webm/VP9 and VP8, avi/mpeg4), both backends, broken files."""

from __future__ import annotations

import numpy as np
import pytest

from severe_bench.errors import ConfigError, SevereError
from severe_bench.synth.encode import write_video
from severe_bench.video import VideoDecodeError, decode_clips, open_video
from severe_bench.video.reader import ENV_BACKEND, decord_available

T, H, W, FPS = 30, 48, 64, 25
LEVELS = 20 + 7 * np.arange(T)  # frame i is identified by the grey level of its top band

BACKENDS = ["pyav"] + (["decord"] if decord_available() else [])
FORMATS = {  # file name -> encoder
    "clip.mp4": "libx264",
    "clip_vp9.webm": "libvpx-vp9",
    "clip_vp8.webm": "libvpx",
    "clip.avi": "mpeg4",
}


def make_frames() -> np.ndarray:
    frames = np.zeros((T, H, W, 3), dtype=np.uint8)
    for i in range(T):
        frames[i, :16] = LEVELS[i]  # flat band: survives lossy coding, tells the frame index
        frames[i, 16:, :, 2] = 90
        x = 2 * i % (W - 12)
        frames[i, 24:36, x:x + 12] = (230, 60, 40)  # a moving square
    return frames


def frame_ids(frames: np.ndarray) -> np.ndarray:
    band = frames[:, 2:14, 4:-4].astype(float).mean(axis=(1, 2, 3))
    return np.abs(band[:, None] - LEVELS[None, :]).argmin(axis=1)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    frames = make_frames()
    out = {}
    for name, codec in FORMATS.items():
        options = {"b": "2M"} if codec == "libvpx" else None
        out[name] = write_video(root / name, frames, FPS, codec=codec, options=options)
    return out, frames


@pytest.mark.parametrize("name", sorted(FORMATS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_decodes_every_frame_in_order(videos, name, backend):
    paths, frames = videos
    with open_video(paths[name], backend=backend) as video:
        assert video.backend == backend
        assert (video.num_frames, video.height, video.width) == (T, H, W)
        assert video.fps == pytest.approx(FPS, rel=1e-3)
        got = video.get_frames(np.arange(T))
    assert got.shape == (T, H, W, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(frame_ids(got), np.arange(T))
    assert np.abs(got.astype(int) - frames.astype(int)).mean() < 6  # lossy, but the same picture


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_random_access_any_order_with_repeats(videos, name):
    paths, _ = videos
    idx = np.array([17, 3, 3, 29, 0, 12, 17])
    for backend in BACKENDS:
        got = open_video(paths[name], backend=backend).get_frames(idx)
        np.testing.assert_array_equal(frame_ids(got), idx)


@pytest.mark.skipif(not decord_available(), reason="decord wheels exist for Linux x86-64 only")
@pytest.mark.parametrize("name", sorted(FORMATS))
def test_backends_agree(videos, name):
    paths, _ = videos
    a, b = open_video(paths[name], "decord"), open_video(paths[name], "pyav")
    assert a.num_frames == b.num_frames
    idx = np.arange(0, T, 3)
    diff = np.abs(a.get_frames(idx).astype(int) - b.get_frames(idx).astype(int))
    assert diff.mean() < 1.0 and diff.max() <= 16


def test_indices_past_the_end_are_clamped(videos):
    paths, _ = videos
    got = open_video(paths["clip.mp4"], "pyav").get_frames([T - 1, T + 5, -3])
    np.testing.assert_array_equal(frame_ids(got), [T - 1, T - 1, 0])


def test_decode_clips_equals_per_clip_decoding(videos):
    paths, _ = videos
    clips = np.array([[0, 2, 4, 6], [4, 6, 8, 10], [29, 29, 29, 29]])
    for backend in BACKENDS:
        together = decode_clips(paths["clip.avi"], clips, backend=backend)
        assert together.shape == (3, 4, H, W, 3)
        video = open_video(paths["clip.avi"], backend=backend)
        for k in range(len(clips)):
            np.testing.assert_array_equal(together[k], video.get_frames(clips[k]))
    with pytest.raises(ValueError):
        decode_clips(paths["clip.avi"], np.arange(4))


def _broken_files(tmp_path, videos):
    paths, _ = videos
    rng = np.random.default_rng(0)
    mp4 = paths["clip.mp4"].read_bytes()
    avi = paths["clip.avi"].read_bytes()
    files = {
        "random.mp4": rng.bytes(4000),
        "random.webm": rng.bytes(4000),
        "empty.avi": b"",
        "truncated.mp4": mp4[: len(mp4) // 2],  # the index (moov) is at the end
        "head_only.avi": avi[:200],
        "text.mp4": b"this is not a video\n" * 20,
    }
    out = []
    for name, data in files.items():
        p = tmp_path / name
        p.write_bytes(data)
        out.append(p)
    return out


@pytest.mark.parametrize("backend", BACKENDS + ["auto"])
def test_unreadable_files_raise_video_decode_error(tmp_path, videos, backend):
    for path in _broken_files(tmp_path, videos) + [tmp_path / "missing.mp4"]:
        with pytest.raises(VideoDecodeError) as info:
            video = open_video(path, backend=backend)
            video.get_frames(np.arange(video.num_frames))
        assert info.value.path == str(path) and info.value.reason
        assert not isinstance(info.value, SevereError)  # counted by datasets, never aborts a run


def test_truncated_webm_reads_what_is_there_consistently(tmp_path, videos):
    """A cut webm has no index to lie about its length: every backend decodes the same leading frames."""
    paths, _ = videos
    data = paths["clip_vp9.webm"].read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    counts = set()
    for backend in BACKENDS:
        try:
            video = open_video(cut, backend=backend)
        except VideoDecodeError:
            continue
        got = video.get_frames(np.arange(video.num_frames))
        np.testing.assert_array_equal(frame_ids(got), np.arange(video.num_frames))
        counts.add(video.num_frames)
    assert len(counts) <= 1 and all(0 < c < T for c in counts)


def test_backend_choice(videos, monkeypatch):
    paths, _ = videos
    monkeypatch.setenv(ENV_BACKEND, "pyav")
    assert open_video(paths["clip.mp4"]).backend == "pyav"
    monkeypatch.setenv(ENV_BACKEND, "nonsense")
    with pytest.raises(ConfigError):
        open_video(paths["clip.mp4"])
    monkeypatch.delenv(ENV_BACKEND)
    assert open_video(paths["clip.mp4"]).backend == ("decord" if decord_available() else "pyav")
    with pytest.raises(ConfigError):
        open_video(paths["clip.mp4"], backend="opencv")


@pytest.mark.parametrize("fraction", [0.8, 0.9])
def test_truncated_avi_gives_real_frames_only(tmp_path, videos, fraction):
    """A cut AVI keeps a header that promises every frame: no backend may invent frames past the cut."""
    paths, _ = videos
    data = paths["clip.avi"].read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * fraction)])
    for backend in BACKENDS:
        try:
            video = open_video(cut, backend=backend)
            got = video.get_frames(np.arange(video.num_frames))
        except VideoDecodeError:
            continue
        ids = frame_ids(got)
        real = video.num_frames  # PyAV corrects its count once decoding hits the cut
        assert 0 < real <= T
        # the frame cut in half decodes with concealment (it may show its predecessor); all before it are exact
        np.testing.assert_array_equal(ids[: real - 1], np.arange(real - 1))
        assert np.all(np.diff(ids) >= 0) and ids.max() <= real - 1
        assert len(got) >= real


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["clip.mp4", "clip_vp9.webm"])
def test_decoding_at_a_short_side_resizes_while_decoding(videos, name, backend):
    """``short_side``: the decoder's scaler gives frames at torchvision's resized size, in order, close to
    full frames resized by torchvision (the fast_decode profile's only difference)."""
    from severe_bench.video.reader import resize_frames, resized_size

    paths, _ = videos
    assert resized_size(H, W, 24) == (24, 32) and resized_size(W, H, 24) == (32, 24) and resized_size(H, W, None) == (H, W)
    with open_video(paths[name], backend=backend) as full_video:
        full = full_video.get_frames(np.arange(T))
    with open_video(paths[name], backend=backend, short_side=24) as video:
        assert (video.height, video.width) == (24, 32)
        small = video.get_frames(np.arange(T))
    assert small.shape == (T, 24, 32, 3)
    band = small[:, 1:7, 2:-2].astype(float).mean(axis=(1, 2, 3))  # the top band, at half size
    full_band = full[:, 2:14, 4:-4].astype(float).mean(axis=(1, 2, 3))
    assert (np.abs(band[:, None] - full_band[None, :]).argmin(axis=1) == np.arange(T)).all()  # frames in order
    ref = resize_frames(full, 24, 32).astype(int)
    assert np.abs(small.astype(int) - ref).mean() < 6


def test_frame_folder_at_a_short_side(tmp_path):
    from PIL import Image

    frames = make_frames()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"{i + 1:06d}.png")
    from severe_bench.video.reader import resize_frames

    with open_video(tmp_path, frame_fps=24, short_side=24) as video:
        got = video.get_frames([0, 5, 29])
    assert got.shape == (3, 24, 32, 3) and (frame_ids(resize_frames(got, H, W)) == [0, 5, 29]).all()
