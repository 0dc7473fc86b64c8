"""The built-in synthetic suite: real videos, official formats, counts that match, deterministic, atomic."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from click.testing import CliRunner

from severe_bench.data.annotations import read_annotations
from severe_bench.synth import MANIFEST, SYNTH_VERSION, complete_manifest, ensure_suite, generate_suite
from severe_bench.synth import count as count_gen
from severe_bench.synth import suite as suite_mod
from severe_bench.video import open_video


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    start = time.perf_counter()
    manifest = generate_suite(out, seed=0, scale="tiny")
    return out, manifest, time.perf_counter() - start


def dataset_config(manifest: dict, name: str) -> dict:
    entry = manifest["datasets"][name]
    return {"name": name, "format": entry["format"], "files": entry["files"], "video_dir": entry["video_dir"],
            "video_ext": entry["video_ext"]}


def test_generation_is_quick_and_writes_a_manifest(suite):
    out, manifest, seconds = suite
    assert seconds < 60
    on_disk = json.loads((out / MANIFEST).read_text())
    assert on_disk == manifest
    assert manifest["version"] == SYNTH_VERSION and manifest["seed"] == 0 and manifest["scale"] == "tiny"
    assert list(manifest["datasets"]) == ["synth_motion", "synth_fine", "synth_count", "synth_multilabel"]
    for name, entry in manifest["datasets"].items():
        videos = sorted((out / name / entry["video_dir"]).rglob(f"*{entry['video_ext']}"))
        assert len(videos) == entry["videos"] == sum(entry["splits"].values())
    assert manifest["total_videos"] == sum(e["videos"] for e in manifest["datasets"].values())


def test_ucf101_lists_parse_with_plain_python(suite):
    out, manifest, _ = suite
    root = out / "synth_motion"
    lists = root / "ucfTrainTestlist"
    assert b"\r\n" in (lists / "classInd.txt").read_bytes()  # DOS line ends, as the official files
    classes = [line.split() for line in (lists / "classInd.txt").read_text().splitlines()]
    assert [int(i) for i, _ in classes] == list(range(1, 7))
    names = [c for _, c in classes]
    train = [line.split() for line in (lists / "trainlist01.txt").read_text().splitlines()]
    test = [line.split() for line in (lists / "testlist01.txt").read_text().splitlines()]
    assert all(len(t) == 2 for t in train) and all(len(t) == 1 for t in test)  # the test list has no label
    for rel, label in train:
        cls = rel.split("/")[0]
        assert names[int(label) - 1] == cls and Path(rel).name.startswith(f"v_{cls}_g")
    train_groups = {rel.split("_g")[1][:2] for rel, _ in train}
    test_groups = {rel[0].split("_g")[1][:2] for rel in test}
    assert not train_groups & test_groups  # split by group, like UCF101
    for rel in [r for r, _ in train] + [r[0] for r in test]:
        assert (root / "UCF-101" / rel).is_file()
    assert len(train) == manifest["datasets"]["synth_motion"]["splits"]["train"]


def test_every_dataset_reads_with_the_official_format_readers(suite):
    out, manifest, _ = suite
    for name, entry in manifest["datasets"].items():
        config = dataset_config(manifest, name)
        for split in ("train", "test"):
            ann = read_annotations(entry["format"], out / name, config, split)
            assert len(ann.samples) == entry["splits"][split], (name, split)
            assert not ann.skipped
            for sample in ann.samples:
                assert (out / name / sample.video).is_file(), sample.video
            if "num_classes" in entry:
                assert ann.class_names is None or len(ann.class_names) == entry["num_classes"]


def test_finegym_names_labels_and_fine_range(suite):
    out, manifest, _ = suite
    entry = manifest["datasets"]["synth_fine"]
    lines = (out / "synth_fine" / entry["files"]["train"]).read_text().splitlines()
    lines += (out / "synth_fine" / entry["files"]["test"]).read_text().splitlines()
    assert any(line.split()[0].endswith(".avi") for line in lines)  # some copies append ".avi"
    labels = set()
    for line in lines:
        name, label = line.split()
        stem = name[:-4] if name.endswith(".avi") else name
        ytid, rest = stem.split("_E_")
        assert len(ytid) == 11
        ev_start, ev_end, _, sub_start, sub_end = rest.split("_")
        assert len(ev_start) == len(ev_end) == 6 and len(sub_start) == len(sub_end) == 4
        assert int(ev_start) < int(ev_end) and int(sub_start) < int(sub_end) <= int(ev_end) - int(ev_start)
        assert (out / "synth_fine" / "subactions" / f"{stem}.mp4").is_file()
        labels.add(int(label))
    assert labels == set(range(entry["num_classes"]))
    assert entry["fine_labels"] == [4, 13]


def test_ucfrep_mat_files_hold_the_generated_counts(suite):
    out, manifest, _ = suite
    entry = manifest["datasets"]["synth_count"]
    mats = sorted((out / "synth_count" / "annotations").rglob("*.mat"))
    assert len(mats) == entry["videos"]
    for path in mats:
        label = scipy.io.loadmat(str(path))["label"][0, 0]  # as the reference loader reads it
        bounds = label["temporal_bound"][:, 0]
        start, end = int(label["start_frame"][0, 0]), int(label["end_frame"][0, 0])
        duration = int(label["duration"][0, 0])
        assert len(bounds) - 1 == entry["counts"][path.stem]
        assert bounds[0] == start and bounds[-1] == end and 1 <= start < end <= duration
        lengths = np.diff(bounds)
        assert lengths.min() >= count_gen.CYCLE_RANGE[0] and lengths.max() <= count_gen.CYCLE_RANGE[1]
        for key in ("offset_next_estimate", "offset_pre_estimate"):
            offsets = label[key][0, :]
            assert offsets.shape == (end - start + 1,) and set(offsets) <= set(lengths)
        cls = path.stem.split("_")[1]
        video = open_video(out / "synth_count" / "UCF-101" / cls / f"{path.stem}.avi")
        assert video.num_frames == duration
    counts = list(entry["counts"].values())
    assert min(counts) >= count_gen.COUNT_RANGE[0] and max(counts) <= count_gen.COUNT_RANGE[1]


def test_counts_are_visible_in_the_video(suite):
    """The repeating motion really has the annotated period: frames one cycle apart look alike."""
    out, _, _ = suite
    path = sorted((out / "synth_count" / "annotations").rglob("v_Pulse_*.mat"))[0]
    label = scipy.io.loadmat(str(path))["label"][0, 0]
    bounds = label["temporal_bound"][:, 0].astype(int) - 1  # 0-based frames
    frames = open_video(out / "synth_count" / "UCF-101" / "Pulse" / f"{path.stem}.avi").get_frames(
        np.arange(int(label["duration"][0, 0]))).astype(float)
    same_phase = np.mean([np.abs(frames[a] - frames[b]).mean() for a, b in zip(bounds[:-1], bounds[1:])])
    mid = [(a + b) // 2 for a, b in zip(bounds[:-1], bounds[1:])]
    half_phase = np.mean([np.abs(frames[a] - frames[m]).mean() for a, m in zip(bounds[:-1], mid)])
    assert same_phase * 2 < half_phase


def test_charades_csv_has_the_official_columns_and_quoting(suite):
    out, manifest, _ = suite
    root = out / "synth_multilabel"
    classes = (root / "Charades_v1_classes.txt").read_text().splitlines()
    assert [c.split()[0] for c in classes] == [f"c{i:03d}" for i in range(6)]
    rows = []
    for split in ("train", "test"):
        text = (root / f"Charades_v1_{split}.csv").read_text()
        assert text.splitlines()[0] == ("id,subject,scene,quality,relevance,verified,script,objects,"
                                        "descriptions,actions,length")
        assert '"' in text  # scripts with commas are quoted
        rows += list(csv.DictReader((root / f"Charades_v1_{split}.csv").open()))
    assert any(r["actions"] == "" for r in rows)
    for r in rows:
        length = float(r["length"])
        video = open_video(root / "Charades_v1_480" / f"{r['id']}.mp4")
        assert video.num_frames / video.fps == pytest.approx(length, abs=0.01)
        for action in filter(None, r["actions"].split(";")):
            cid, s, e = action.split()
            assert cid in {c.split()[0] for c in classes} and 0 <= float(s) < float(e) <= length + 1e-6


def test_videos_decode_at_the_documented_size(suite):
    out, manifest, _ = suite
    for name, entry in manifest["datasets"].items():
        first = sorted((out / name / entry["video_dir"]).rglob(f"*{entry['video_ext']}"))[0]
        video = open_video(first)
        assert [video.height, video.width] == entry["frame_size"]
        assert video.fps == pytest.approx(entry["fps"])
        frames = video.get_frames(np.arange(video.num_frames))
        assert frames.std(axis=0).mean() > 1.0  # something moves


def test_same_seed_same_suite_other_seed_other_suite(suite, tmp_path):
    out, manifest, _ = suite
    again = generate_suite(tmp_path / "again", seed=0, scale="tiny")
    assert again == manifest
    assert (tmp_path / "again" / MANIFEST).read_bytes() == (out / MANIFEST).read_bytes()
    for rel in manifest["annotation_sha256"]:
        assert (tmp_path / "again" / rel).read_bytes() == (out / rel).read_bytes()
    for rel in ["synth_motion/UCF-101/Grow/v_Grow_g01_c01.avi", "synth_count/UCF-101/Spin/v_Spin_g01_c01.avi"]:
        a = open_video(out / rel).get_frames(np.arange(8)).astype(int)
        b = open_video(tmp_path / "again" / rel).get_frames(np.arange(8)).astype(int)
        assert np.abs(a - b).mean() < 1.0
    other = generate_suite(tmp_path / "other", seed=1, scale="tiny")
    assert other["annotation_sha256"] != manifest["annotation_sha256"]


def test_complete_suite_is_skipped_and_damage_is_detected(suite, tmp_path):
    out, manifest, _ = suite
    stamp = (out / MANIFEST).stat().st_mtime_ns
    assert generate_suite(out, seed=0, scale="tiny") == manifest
    assert (out / MANIFEST).stat().st_mtime_ns == stamp  # nothing rewritten
    assert complete_manifest(out, seed=1, scale="tiny") is None  # another request is not this suite
    assert complete_manifest(out, seed=0, scale="small") is None


def test_ensure_suite_is_atomic(tmp_path, monkeypatch):
    cache = tmp_path / "cache"

    def broken(root, seed, cfg):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(suite_mod.GENERATORS["synth_count"], "generate", broken)
    with pytest.raises(RuntimeError):
        ensure_suite(cache, seed=0, scale="tiny")
    assert not any(cache.iterdir())  # no half suite, no temp folder left behind
    monkeypatch.undo()

    path = ensure_suite(cache, seed=0, scale="tiny")
    assert path == cache / f"v{SYNTH_VERSION}-seed0-tiny" and complete_manifest(path, 0, "tiny")
    assert [p.name for p in cache.iterdir()] == [path.name]
    video = next((path / "synth_fine" / "subactions").glob("*.mp4"))
    video.unlink()  # a damaged suite is regenerated, not trusted
    assert complete_manifest(path, 0, "tiny") is None
    assert ensure_suite(cache, seed=0, scale="tiny") == path and video.is_file()


def test_cli_reports_counts(suite):
    from severe_bench.cli import cli

    out, manifest, _ = suite
    result = CliRunner().invoke(cli, ["synth", "--out", str(out), "--scale", "tiny"])
    assert result.exit_code == 0, result.output
    assert "already complete" in result.output
    for name, entry in manifest["datasets"].items():
        line = next(line for line in result.output.splitlines() if line.strip().startswith(name))
        assert f"{entry['videos']} videos" in line and f"train {entry['splits']['train']}" in line
