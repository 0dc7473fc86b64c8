"""Few-sample subsets, metrics and learning-rate schedules on known values."""

import math

import numpy as np
import pytest

from severe_bench.data.sample import Sample
from severe_bench.data.subset import class_balanced_subset, sample_list_hash
from severe_bench.engine.metrics import classification_metrics, counting_metrics, multilabel_metrics
from severe_bench.engine.schedule import lr_at


def _samples(n_classes=7, per_class=(3, 30)):
    rng = np.random.default_rng(1)
    out = []
    for c in range(n_classes):
        for j in range(int(rng.integers(*per_class))):
            out.append(Sample(video=f"c{c}/v{j}.avi", label=c))
    return out


def test_class_balanced_subset_sizes_and_determinism():
    samples = _samples()
    sub = class_balanced_subset(samples, size=20, seed=0)
    per = math.ceil(20 / 7)
    counts = {c: sum(1 for s in sub if s.label == c) for c in range(7)}
    for c in range(7):
        available = sum(1 for s in samples if s.label == c)
        assert counts[c] == min(per, available)
    assert sample_list_hash(sub) == sample_list_hash(class_balanced_subset(samples, 20, 0))
    assert sample_list_hash(sub) != sample_list_hash(class_balanced_subset(samples, 20, 1))
    # the subset keeps annotation order
    assert [samples.index(s) for s in sub] == sorted(samples.index(s) for s in sub)


def test_classification_metrics():
    labels = np.array([0, 0, 0, 0, 1, 2])
    scores = np.eye(3)[[0, 0, 0, 1, 1, 1]]
    m = classification_metrics(scores, labels, 3)
    assert m["top1"] == pytest.approx(100 * 4 / 6)
    assert m["mean_class_accuracy"] == pytest.approx(100 * (0.75 + 1 + 0) / 3)
    assert m["per_class_accuracy"] == {"0": 75.0, "1": 100.0, "2": 0.0}


def test_multilabel_map_skips_classes_without_positives():
    targets = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.5], [0.7, 0.6, 0.5]])
    m = multilabel_metrics(scores, targets)
    assert m["classes_scored"] == 2 and m["map"] == pytest.approx(100.0)


def test_counting_metrics():
    m = counting_metrics([4, 6, 10], [5, 5, 10])
    assert m["counting_error"] == pytest.approx((0.2 + 0.2 + 0) / 3)
    assert m["obo_accuracy"] == pytest.approx(1.0)


def test_multistep_schedule_in_passes():
    s = {"kind": "multistep", "milestones": [6, 10, 14], "gamma": 0.3}
    assert lr_at(s, 1e-4, 0) == pytest.approx(1e-4)
    assert lr_at(s, 1e-4, 5.99) == pytest.approx(1e-4)
    assert lr_at(s, 1e-4, 6) == pytest.approx(3e-5)
    assert lr_at(s, 1e-4, 15) == pytest.approx(1e-4 * 0.3 ** 3)


def test_warmup_cosine():
    s = {"kind": "cosine", "passes": 10, "warmup_passes": 2, "warmup_start_lr": 0.0, "min_lr": 0.0}
    assert lr_at(s, 1.0, 1) == pytest.approx(0.5)
    assert lr_at(s, 1.0, 2) == pytest.approx(1.0)
    assert lr_at(s, 1.0, 6) == pytest.approx(0.5)
    assert lr_at(s, 1.0, 10) == pytest.approx(0.0, abs=1e-12)


def test_smoke_cap_is_evenly_spaced_and_keeps_every_class():
    from severe_bench.data.subset import evenly_spaced
    from severe_bench.registry import get_task

    samples = [Sample(video=f"c{c}/v{j}.avi", label=c) for c in range(6) for j in range(14)]
    cap = get_task("synth_motion", profile="smoke").config["max_videos"]
    picked = evenly_spaced(samples, cap["train"])
    assert len(picked) == cap["train"] and {s.label for s in picked} == set(range(6))
    assert evenly_spaced(samples, None) == samples and evenly_spaced(samples[:5], 32) == samples[:5]
    assert "max_videos" not in get_task("synth_motion").config  # the full protocol uses every video


def test_fast_decode_profile_decodes_at_the_test_short_side(tmp_path):
    """``--profile fast_decode``: its own hash, not comparable, and train/test clips decoded at the test short
    side give the same shapes as (and pixels close to) the protocol's full-frame decode + torchvision resize."""
    import torch

    from severe_bench.data.clips import TestClips, TrainClips
    from severe_bench.engine.transforms import clip_sampling
    from severe_bench.registry import get_task
    from severe_bench.synth.encode import write_video
    from severe_bench.video.transforms import TestViews, split_train_transform

    full, fast = get_task("ucf101"), get_task("ucf101", profile="fast_decode")
    assert fast.protocol_hash != full.protocol_hash and not fast.comparable and full.comparable
    assert clip_sampling(fast.protocol, "input")["decode_short_side"] == fast.protocol["test"]["resize"] == 128
    assert "decode_short_side" not in clip_sampling(full.protocol, "test")
    assert clip_sampling(get_task("ucf101", profile="fast_decode", track="vit").protocol, "test")["decode_short_side"] == 224

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(1, 6, 8, 3)).repeat(8, axis=1).repeat(8, axis=2)
    frames = np.clip(base + rng.integers(-10, 10, size=(40, 48, 64, 3)), 0, 255).astype(np.uint8)
    write_video(tmp_path / "v.mp4", frames, 25, codec="libx264")
    samples = [Sample(video="v.mp4", label=0, id="v")]
    test = {"frames": 8, "fps": 25, "short_video": "loop"}
    views = [TestClips(samples, tmp_path, {**test, **extra}, 2, TestViews(24, 20, 3))[0]["clip"]
             for extra in ({}, {"decode_short_side": 24})]
    assert views[0].shape == views[1].shape == (6, 8, 3, 20, 20)
    assert (views[0].int() - views[1].int()).abs().float().mean() < 8
    train = [TrainClips(samples, tmp_path, {**test, **extra}, split_train_transform(crop=16, color_jitter=None), 1, 0)[0]
             for extra in ({}, {"decode_short_side": 24})]
    assert train[0]["clip"].shape == train[1]["clip"].shape == (8, 3, 16, 16)
    assert not torch.equal(train[0]["clip"], train[1]["clip"])  # a different source resolution
