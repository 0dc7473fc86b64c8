"""Charades as PySlowFast trains it (PROTOCOL.md §5): clip-level training targets from the actions' time
spans, clip timing on a 24 fps timeline whatever the file's rate, and the 24 fps frame-folder layout read with
PySlowFast frame lists."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from severe_bench import registry
from severe_bench.data.clip_labels import labels_in_span, segments_from_frame_labels
from severe_bench.data import clips as clip_data
from severe_bench.data.clips import TrainClips
from severe_bench.synth.encode import write_video
from severe_bench.video.reader import open_video
from severe_bench.video.sampling import test_clip_indices, train_clip_indices

CLASSES = "c000 Holding some clothes\nc001 Putting clothes somewhere\nc002 Taking a picture of something\n"
HEADER = ["id", "subject", "scene", "quality", "relevance", "verified", "script", "objects", "descriptions",
          "actions", "length"]


def as_tensor(frames):
    return torch.from_numpy(np.ascontiguousarray(frames))


def ramp_video(path: Path, fps: float, seconds: float) -> Path:
    """A real encoded mp4 whose frame k has grey level proportional to its time (k / fps)."""
    n = int(round(fps * seconds))
    levels = (np.arange(n) / fps / seconds * 220 + 16).astype(np.uint8)
    frames = np.broadcast_to(levels[:, None, None, None], (n, 16, 16, 3)).copy()
    return write_video(path, frames, fps)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("charades_videos")
    return {fps: ramp_video(d / f"v{fps}.mp4", fps, 8.0) for fps in (25, 30)}


def test_segment_overlap_rule():
    segs = [(0, 0.0, 2.0), (1, 4.0, 6.0), (2, 1.5, 1.6)]
    assert labels_in_span(segs, 2.0, 3.9) == (0,)  # touching an end counts (closed spans)
    assert labels_in_span(segs, 2.01, 3.99) == ()
    assert labels_in_span(segs, 1.0, 5.0) == (0, 1, 2)
    frames = [(0,), (0,), (), (1, 2), (2,)]
    assert segments_from_frame_labels(frames, 24.0) == [(0, 0.0, 1 / 24), (1, 3 / 24, 3 / 24), (2, 3 / 24, 4 / 24)]


@pytest.mark.parametrize("fps", [25, 30])
def test_stride_counts_24fps_time_not_file_frames(videos, fps):
    with open_video(videos[fps]) as v:
        n, vfps = v.num_frames, v.fps
    assert vfps == pytest.approx(fps, rel=1e-3) and n == 8 * fps
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = train_clip_indices(n, vfps, 8, rng=rng, stride=8, stride_fps=24)
        seconds = idx / vfps
        # consecutive frames 8/24 s apart, up to the file's frame quantisation
        assert np.all(np.abs(np.diff(seconds) - 8 / 24) <= 1 / vfps + 1e-9)
        assert seconds[-1] - seconds[0] == pytest.approx(7 * 8 / 24, abs=1 / vfps + 1e-9)
    plain = train_clip_indices(n, vfps, 8, rng=rng, stride=8)  # every 8th file frame: fps-dependent span
    assert (plain[-1] - plain[0]) / vfps == pytest.approx(56 / fps)
    clips = test_clip_indices(n, vfps, 8, num_clips=10, stride=8, stride_fps=24)
    # PySlowFast's evenly spaced starts over the 24 fps timeline (8 s -> 192 frames, span 57)
    starts24 = np.round(np.arange(10) * ((192 - 57) / 9)).astype(int)
    assert np.array_equal(clips[:, 0], np.floor(starts24 * vfps / 24 + 1e-6).astype(int))


def write_charades_csv(root: Path, rows: list[tuple[str, str, float]], name="Charades_v1_train.csv"):
    root.mkdir(parents=True, exist_ok=True)
    (root / "Charades_v1_classes.txt").write_text(CLASSES)
    with open(root / name, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for vid, actions, length in rows:
            w.writerow([vid, "S1", "Kitchen", "6", "7", "Yes", "A person, then another", "", "", actions, length])


def test_training_targets_are_the_actions_overlapping_the_clip(videos, tmp_path):
    root = tmp_path / "charades"
    actions = "c000 0.00 2.00;c001 4.50 6.00;c002 7.20 8.00"
    write_charades_csv(root, [("AB12C", actions, 8.0)])
    write_charades_csv(root, [("AB12C", actions, 8.0)], name="Charades_v1_test.csv")
    (root / "Charades_v1_480").mkdir()
    (root / "Charades_v1_480" / "AB12C.mp4").symlink_to(videos[30])
    task = registry.get_task("charades")
    assert task.protocol["train_targets"] == "clip" and task.protocol["input"]["stride_fps"] == 24
    (sample,) = registry.read_split(task, root, "train")
    assert sample.label == (0, 1, 2)  # video level
    sampling = {"frames": 4, "stride": 8, "stride_fps": 24, "short_video": "clamp"}
    ds = TrainClips([sample], root, sampling, as_tensor, clips_per_video=24, seed=5, label_mode="multi",
                    num_classes=3, clip_targets=True)
    seen = set()
    for i in range(len(ds)):
        item = ds[i]
        assert item["ok"]
        # the clip's time span, from its own frames (grey level = time): first and last frame
        grey = item["clip"].float().mean(dim=(1, 2, 3)).numpy()
        t0, t1 = (grey[0] - 16) / 220 * 8, (grey[-1] - 16) / 220 * 8
        assert t1 - t0 == pytest.approx(1.0, abs=0.1)  # 3 strides of 8/24 s
        expected = {c for c, s, e in [(0, 0, 2.0), (1, 4.5, 6.0), (2, 7.2, 8.0)] if s <= t1 + 0.05 and e >= t0 - 0.05}
        got = {int(c) for c in torch.nonzero(item["target"]).flatten()}
        certain = {c for c, s, e in [(0, 0, 2.0), (1, 4.5, 6.0), (2, 7.2, 8.0)] if s <= t1 - 0.05 and e >= t0 + 0.05}
        assert certain <= got <= expected, (i, t0, t1, got)
        seen.add(tuple(sorted(got)))
    assert len(seen) >= 3  # clips in different parts of the video get different targets
    video_level = TrainClips([sample], root, sampling, as_tensor, 1, 5, "multi", 3, clip_targets=False)[0]
    assert video_level["target"].tolist() == [1.0, 1.0, 1.0]
    test_item = clip_data.TestClips([sample], root, {**sampling, "frames": 4}, 2, lambda f: as_tensor(f).unsqueeze(0),
                          "multi", 3)[0]
    assert test_item["target"].tolist() == [1.0, 1.0, 1.0]  # testing keeps the video-level labels


def write_frame_folder(root: Path, vid: str, n: int) -> None:
    from PIL import Image

    folder = root / "Charades_v1_rgb" / vid
    folder.mkdir(parents=True)
    for k in range(n):
        Image.fromarray(np.full((16, 16, 3), 5 * k, dtype=np.uint8)).save(folder / f"{vid}-{k + 1:06d}.jpg",
                                                                           quality=95)


def test_frame_folders_read_with_pyslowfast_frame_lists(tmp_path):
    root = tmp_path / "charades"
    root.mkdir()
    (root / "Charades_v1_classes.txt").write_text(CLASSES)
    frame_labels = {"AAAAA": [(0,)] * 10 + [()] * 10 + [(1, 2)] * 20, "BBBBB": [(2,)] * 30}
    lines = ["original_vido_id video_id frame_id path labels"]
    for vid_index, (vid, labels) in enumerate(frame_labels.items()):
        write_frame_folder(root, vid, len(labels))
        for k, lab in enumerate(labels):
            lines.append(f'{vid} {vid_index} {k} {vid}/{vid}-{k + 1:06d}.jpg "{",".join(map(str, lab))}"')
    (root / "frame_lists").mkdir()
    for name in ("train.csv", "val.csv"):
        (root / "frame_lists" / name).write_text("\n".join(lines) + "\n")
    task = registry.get_task("charades_rgb")
    samples = registry.read_split(task, root, "train")
    a = samples[0]
    assert a.video == "Charades_v1_rgb/AAAAA" and a.label == (0, 1, 2) and a.meta["num_frames"] == 40
    assert a.meta["segments"] == [(0, 0.0, 9 / 24), (1, 20 / 24, 39 / 24), (2, 20 / 24, 39 / 24)]
    sampling = {"frames": 4, "stride": 8, "stride_fps": 24, "short_video": "clamp"}
    ds = TrainClips([a], root, sampling, as_tensor, clips_per_video=16, seed=1, label_mode="multi", num_classes=3,
                    clip_targets=True)
    for i in range(len(ds)):
        item = ds[i]
        assert item["ok"]
        idx = np.round(item["clip"].float().mean(dim=(1, 2, 3)).numpy() / 5).astype(int)  # frame k is grey 5k
        assert np.all(np.diff(idx) == 8) and 0 <= idx[0] <= 40 - 25  # PySlowFast: span 25, start in [0, 15]
        # PySlowFast's target: the union of the frame labels from the first to the last sampled frame
        union = {c for k in range(idx[0], idx[-1] + 1) for c in frame_labels["AAAAA"][k]}
        assert {int(c) for c in torch.nonzero(item["target"]).flatten()} == union
    test = registry.read_split(task, root, "test")
    item = clip_data.TestClips(test, root, sampling, 3, lambda f: as_tensor(f).unsqueeze(0), "multi", 3)[1]
    assert item["ok"] and item["target"].tolist() == [0.0, 0.0, 1.0]
    from click.testing import CliRunner

    from severe_bench.cli import cli

    out = CliRunner().invoke(cli, ["data", "check", "charades_rgb", "--root", str(root)]).output
    assert "missing videos" not in out and "[train] samples: 2" in out


def test_frame_list_folder_leaving_the_root_is_refused(tmp_path):
    from severe_bench.errors import AnnotationError

    root = tmp_path / "c"
    root.mkdir()
    (root / "Charades_v1_classes.txt").write_text(CLASSES)
    (root / "frame_lists").mkdir()
    lst = root / "frame_lists" / "train.csv"
    lst.write_text('original_vido_id video_id frame_id path labels\nX 0 0 ../../X/X-000001.jpg ""\n')
    with pytest.raises(AnnotationError) as err:
        registry.read_split(registry.get_task("charades_rgb"), root, "train")
    assert str(err.value).startswith(f"{lst}:2: ")


def test_reversed_spans_label_no_clip():
    assert labels_in_span([(3, 18.0, 10.0), (4, 9.0, 19.0)], 9.0, 19.0) == (4,)


def test_real_charades_lists_give_segments_for_clip_targets():
    root = Path(__file__).resolve().parents[2] / "shared" / "realfiles" / "charades"
    if not root.exists():
        pytest.skip(f"{root} not present (official files are not part of the project)")
    task = registry.get_task("charades")
    train = registry.read_split(task, root, "train")
    assert len(train) == 7985
    reversed_spans = [(s.id, seg) for s in train for seg in s.meta["segments"] if seg[1] > seg[2]]
    assert len(reversed_spans) == 7  # the official file's own inconsistencies, covered by no clip
    for s in train:
        whole = labels_in_span(s.meta["segments"], 0.0, float("inf"))
        assert set(whole) <= set(s.label)
        assert set(s.label) - set(whole) <= {seg[0] for vid, seg in reversed_spans if vid == s.id}
