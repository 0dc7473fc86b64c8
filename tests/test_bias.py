"""Representation bias: the formula on known values, the linear probe on cached features, transfer ratios."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from severe_bench.bias import (chance_accuracy, linear_probe, plot_ratio_vs_bias, published_transfer,
                               representation_bias, transfer_ratios)
from severe_bench.errors import SevereError


def test_formula_on_known_values():
    assert chance_accuracy(10) == 10.0
    assert representation_bias(50.0, 10) == pytest.approx(math.log2(5))
    assert representation_bias(10.0, 10) == 0.0  # chance level: no bias
    assert representation_bias(5.0, 10) == pytest.approx(-1.0)  # half of chance
    assert representation_bias(100.0, 101) == pytest.approx(math.log2(101))  # UCF101, perfect static probe
    assert representation_bias(100.0 / 174 * 8, 174) == pytest.approx(3.0)
    assert representation_bias(0.0, 5) == float("-inf")
    with pytest.raises(ValueError):
        representation_bias(120.0, 5)
    with pytest.raises(ValueError):
        chance_accuracy(1)


def _blobs(n_per_class, centres, rng):
    y = np.repeat(np.arange(len(centres)), n_per_class)
    x = centres[y] + rng.normal(size=(len(y), centres.shape[1]))
    return x.astype(np.float32), y


def test_linear_probe_separable_vs_random_labels():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16)) * 3.0
    x, y = _blobs(40, centres, rng)
    xt, yt = _blobs(20, centres, rng)  # same classes, fresh samples
    probe = linear_probe(x, y, xt, yt, 5, device="cpu")
    assert probe.top1 > 95.0 and probe.num_train == 200 and probe.num_test == 100
    assert probe.weight_decay in (1e-4, 1e-3, 1e-2, 1e-1)
    assert representation_bias(probe.top1, 5) == pytest.approx(math.log2(probe.top1 / 20.0))
    # features unrelated to the labels: the probe stays near chance, the bias near 0
    noise = rng.normal(size=(400, 16)).astype(np.float32)
    labels = rng.integers(0, 4, size=400)
    chance = linear_probe(noise[:300], labels[:300], noise[300:], labels[300:], 4, weight_decay=1e-1)
    assert abs(representation_bias(chance.top1, 4)) < 0.6


def test_linear_probe_drops_nan_rows_and_checks_labels():
    rng = np.random.default_rng(2)
    x, y = _blobs(10, rng.normal(size=(3, 4)) * 4.0, rng)
    x[0] = np.nan
    p = linear_probe(x, y, x[1:], y[1:], 3, weight_decay=1e-3)
    assert p.num_train == 29 and p.num_test == 29
    with pytest.raises(SevereError, match="labels outside"):
        linear_probe(x[1:], y[1:], x[1:], y[1:] + 5, 3)


def test_transfer_ratio_from_published_synapt_numbers(tmp_path):
    pub = published_transfer("ft")
    r = transfer_ratios(pub, "TSN-R18 Synthetic150", "TSN-R18 Kinetics150", ["ucf101", "diving48", "uav_human"])
    by = r.set_index("task")["transfer_ratio"]
    assert by["ucf101"] == pytest.approx(76.32 / 79.99)
    assert by["diving48"] == pytest.approx(33.40 / 31.78)
    assert by["uav_human"] == pytest.approx(27.60 / 12.87)
    with pytest.raises(SevereError, match="no result for 'Nope'"):
        transfer_ratios(pub, "Nope", "TSN-R18 Kinetics150", ["ucf101"])
    table = r.assign(bias=[3.1, 1.2, 0.4])
    paths = plot_ratio_vs_bias(table, "Synthetic", "Kinetics", "imagenet", tmp_path)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)


def test_transfer_ratio_averages_seeds():
    values = pd.DataFrame({"method": ["A", "A", "B"], "task": ["t", "t", "t"], "value": [40.0, 60.0, 25.0]})
    assert transfer_ratios(values, "A", "B", ["t"])["transfer_ratio"].iloc[0] == pytest.approx(2.0)


# --- end to end on the synthetic suite ----------------------------------------------------------------

@pytest.mark.slow
def test_bias_command_with_transfer_ratio(tiny_suite, tmp_path, capsys):
    import json

    from severe_bench.cli import main
    from test_table import write_result

    res = tmp_path / "res"
    for seed in range(2):
        for task, (a, b) in {"synth_motion": (60.0, 80.0), "synth_fine": (55.0, 50.0)}.items():
            write_result(res, task, "Synthetic", a + seed, seed=seed)
            write_result(res, task, "Real", b + seed, seed=seed)
    out = tmp_path / "bias"
    main(["bias", "--measure", "checkpoint-static", "--task", "synth_motion", "--task", "synth_fine",
          "--representation", "scratch",
          "--data-root", str(tiny_suite), "--frames", "4", "--crop", "32", "--extract-batch-size", "16",
          "--weight-decay", "0.01", "--device", "cpu", "--results", str(res), "--compare", "Synthetic", "Real",
          "--out", str(out), "--json"])
    payload = json.loads(capsys.readouterr().out)
    rows = {r["task"]: r for r in payload["rows"]}
    assert payload["mode"] == "static" and payload["layer"] == "layer4"
    assert payload["measure"]["name"] == "checkpoint-static" and payload["measure"]["label"] == "checkpoint-static: scratch"
    assert {r["measure"] for r in payload["rows"]} == {"checkpoint-static"}
    assert rows["synth_motion"]["num_classes"] == 6  # the task (and its annotations) have 6 classes
    for r in rows.values():
        assert 0.0 <= r["probe_top1"] <= 100.0
        assert r["chance_top1"] == pytest.approx(100.0 / r["num_classes"])
        expected = representation_bias(r["probe_top1"], r["num_classes"])
        if math.isinf(expected):  # a probe at 0 %: B = −∞, written as null (JSON has no infinity)
            assert r["bias"] is None
        else:
            assert r["bias"] == pytest.approx(expected, abs=1e-9)  # probe_top1 is stored rounded
    assert rows["synth_motion"]["num_train"] == 12 and rows["synth_motion"]["num_test"] == 6
    assert rows["synth_motion"]["transfer_ratio"] == pytest.approx(60.5 / 80.5)
    assert rows["synth_fine"]["transfer_ratio"] == pytest.approx(55.5 / 50.5)
    for name in ("bias.csv", "bias.json", "bias_vs_transfer.png", "bias_vs_transfer.pdf"):
        assert (out / name).stat().st_size > 0
    table = pd.read_csv(out / "bias.csv")
    assert list(table["task"]) == ["synth_motion", "synth_fine"] and "transfer_ratio" in table
    # later: the same table from that run's bias.json and the result JSONs, nothing measured again
    again = tmp_path / "again"
    main(["bias", "--bias-table", str(out / "bias.json"), "--results", str(res), "--compare", "Synthetic", "Real",
          "--out", str(again)])
    assert not (again / "features").exists()
    wide = pd.read_csv(again / "ratio_vs_bias.csv").set_index("row")
    assert list(wide.columns) == ["synth_motion", "synth_fine"]
    assert wide.loc["Synthetic / Real (finetune)", "synth_motion"] == pytest.approx(60.5 / 80.5, abs=1e-5)
    b_then = rows["synth_motion"]["bias"]
    b_now = wide.loc["B [checkpoint-static: scratch]", "synth_motion"]
    assert b_now == pytest.approx(b_then, abs=1e-5) if b_then is not None else b_now == float("-inf")


@pytest.mark.slow
def test_static_features_are_the_middle_frame_repeated(tiny_suite, tmp_path):
    import torch

    from severe_bench.checkpoints import load_checkpoint
    from severe_bench.features import clip_spec_for, extract_features, task_for
    from severe_bench.registry import read_split, resolve_data_root
    from severe_bench.video.reader import decode_clips, open_video
    from severe_bench.video.sampling import test_clip_indices
    from severe_bench.video.transforms import test_transform

    torch.manual_seed(0)
    loaded = load_checkpoint("scratch", count_flops=False)
    task = task_for("synth_motion", "full", "r2plus1d_18")
    root = resolve_data_root(task, tiny_suite)
    samples = read_split(task, root, "test")[:3]
    spec = clip_spec_for(task, loaded.info, frames=4, crop=32)
    assert (spec.frames, spec.crop, spec.resize) == (4, 32, 36)  # the task's 72/64 view, scaled
    fs = extract_features(loaded, task, root, samples, ["layer1", "layer4"], tmp_path, split="test", mode="static",
                          spec=spec, batch_size=3)
    # by hand: the centre clip's middle frame, repeated 4 times, through the same test transform
    path = root / samples[1].video
    with open_video(path) as v:
        idx = test_clip_indices(v.num_frames, v.fps, 4, target_fps=spec.fps, num_clips=1)
    frame = decode_clips(path, idx[:, [2]])[0]  # (1, H, W, 3)
    clip = torch.from_numpy(np.repeat(frame, 4, axis=0)).permute(0, 3, 1, 2)
    x = test_transform(resize_short=36, crop=32, mean=spec.mean, std=spec.std)(clip).unsqueeze(0)
    with torch.no_grad():
        expected = loaded.backbone.forward_layers(x, ["layer4"])["layer4"][0].numpy()
    assert np.allclose(fs.array("layer4")[1], expected, atol=1e-4)
    video = extract_features(loaded, task, root, samples, ["layer4"], tmp_path, split="test", mode="video",
                             spec=spec, batch_size=3)
    assert video.directory != fs.directory and not np.allclose(video.array("layer4"), fs.array("layer4"))


# --- the published definition (SynAPT Table 4.2) ---------------------------------------------------------

# SynAPT Table 4.2 as published: M (%) and B per dataset
TABLE_4_2 = {"ucf101": (48.53, 5.62), "hmdb51": (27.78, 3.83), "mini_ssv2": (9.03, 2.97), "diving48": (8.68, 2.06),
             "ikeafa": (33.54, 2.01), "uav_human": (2.52, 1.96)}


def test_formula_reproduces_table_4_2():
    from severe_bench.bias import published_bias
    from severe_bench.registry import get_task

    pub = published_bias().set_index("task")
    assert sorted(pub.index) == sorted(TABLE_4_2)
    for task, (m, b) in TABLE_4_2.items():
        assert pub.loc[task, "probe_top1"] == m and pub.loc[task, "bias"] == b
        c = get_task(task).num_classes  # the task file's class count is the one B is computed with
        assert int(pub.loc[task, "num_classes"]) == c
        assert abs(representation_bias(m, c) - b) < 0.01, task  # the published figures are rounded


def test_ratio_table_from_published_tables_reproduces_table_4_3(tmp_path, capsys):
    from severe_bench.cli import main

    out = tmp_path / "t43"
    main(["bias", "--bias-table", "published", "--compare", "TSN-R18 Synthetic150", "TSN-R18 Kinetics150",
          "--with-reference", "--out", str(out)])
    printed = capsys.readouterr().out
    assert "SynAPT Table 4.3 layout" in printed and "imagenet-tsn" in printed
    assert "published_*: SynAPT Table 4.2" in printed and "NOT the same" not in printed
    wide = pd.read_csv(out / "ratio_vs_bias.csv").set_index("row")
    ft = wide.loc["TSN-R18 Synthetic150 / TSN-R18 Kinetics150 (published FT)"]
    lp = wide.loc["TSN-R18 Synthetic150 / TSN-R18 Kinetics150 (published LP)"]
    # SynAPT Table 4.3 as printed; its UCF101 column has the two rows' values swapped (76.32/79.99 = 0.95 is the
    # fine-tuning ratio of Table 4.1, 19.35/50.83 = 0.38 the linear-probing one)
    printed_lp = {"ucf101": 0.95, "hmdb51": 0.50, "mini_ssv2": 1.21, "diving48": 1.05, "ikeafa": 1.11, "uav_human": 2.23}
    printed_ft = {"ucf101": 0.38, "hmdb51": 0.83, "mini_ssv2": 1.06, "diving48": 1.05, "ikeafa": 1.05, "uav_human": 2.14}
    printed_lp["ucf101"], printed_ft["ucf101"] = printed_ft["ucf101"], printed_lp["ucf101"]
    for task in TABLE_4_2:
        assert abs(ft[task] - printed_ft[task]) <= 0.005 and abs(lp[task] - printed_lp[task]) <= 0.005, task
        assert wide.loc["B [imagenet-tsn: SynAPT Table 4.2]", task] == TABLE_4_2[task][1]
    assert (out / "bias_vs_transfer.png").stat().st_size > 1000


def test_sgd_probe_learns_and_is_reproducible():
    from severe_bench.bias import sgd_probe

    rng = np.random.default_rng(3)
    centres = np.abs(rng.normal(size=(4, 32))) * 3.0  # non-negative like pooled ReLU features
    x, y = _blobs(50, centres, rng)
    xt, yt = _blobs(20, centres, rng)
    cfg = dict(lr=0.05, momentum=0.9, weight_decay=5e-4, dropout=0.5, batch_size=32, epochs=20)
    a = sgd_probe(x, y, xt, yt, 4, **cfg)
    assert a.method == "sgd" and a.top1 > 90.0 and a.num_train == 200 and a.weight_decay == 5e-4
    assert sgd_probe(x, y, xt, yt, 4, **cfg).top1 == a.top1  # same seed, same classifier
    # the classifier is fitted on the training rows only: other test rows do not change it
    both = sgd_probe(x, y, np.concatenate([xt, xt]), np.concatenate([yt, yt]), 4, **cfg)
    assert both.top1 == pytest.approx(a.top1)
    with pytest.raises(SevereError, match="unsupported"):
        sgd_probe(x, y, xt, yt, 4, **{**cfg, "lr": 0.1}, schedule="step")


@pytest.fixture(scope="module")
def random_resnet18(tmp_path_factory):
    import torch
    import torchvision

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("r18") / "resnet18_random.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


@pytest.mark.slow
def test_imagenet_tsn_command_on_real_videos(tiny_suite, random_resnet18, tmp_path, capsys, one_thread):
    import json

    from severe_bench.cli import main

    out = tmp_path / "bias"
    args = ["bias", "--task", "synth_motion", "--representation", str(random_resnet18), "--data-root",
            str(tiny_suite), "--segments", "4", "--crop", "32", "--probe-epochs", "5", "--device", "cpu",
            "--extract-batch-size", "6", "--with-reference", "--out", str(out), "--json"]
    main(args)
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["measure"]["name"] == "imagenet-tsn" and payload["mode"] == "tsn"
    assert payload["comparable_with_published"] is False  # small frames, few epochs: not Table 4.2's measurement
    assert payload["clip"]["segments"] == 4 and payload["clip"]["crop"] == 32 and payload["clip"]["resize"] == 37
    assert payload["probe"]["optimizer"] == "sgd" and payload["probe"]["epochs"] == 5
    assert payload["probe"]["weight_decay"] == 5e-4 and payload["probe"]["batch_size"] == 256  # tasks/_bias.yaml
    row = payload["rows"][0]
    assert row["probe"] == "sgd" and row["num_train"] == 12 and row["num_test"] == 6
    assert row["representation"] == "resnet18_random" and row["published_bias"] is None  # no published row
    if row["bias"] is not None:
        assert row["bias"] == pytest.approx(representation_bias(row["probe_top1"], 6), abs=1e-9)
    caches = sorted(p.name for p in (out / "features").iterdir())
    assert len(caches) == 2 and all("_tsn_" in c for c in caches)  # train and test, once each
    main(args)  # a second run reuses both caches and gives the same numbers
    again = capsys.readouterr()
    assert again.err.count("features: reusing") == 2
    assert json.loads(again.out)["rows"][0]["probe_top1"] == row["probe_top1"]


def test_default_is_the_published_definition(tiny_suite, tmp_path, monkeypatch, capsys):
    from severe_bench.bias import measure_bias
    from severe_bench.cli import main

    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SEVERE_OFFLINE", "1")
    monkeypatch.delenv("SEVERE_CHECKPOINTS_PATH", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["bias", "--task", "synth_motion", "--data-root", str(tiny_suite), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_.value.code != 0 and "Traceback" not in err
    assert "imagenet_resnet18" in err and "resnet18-f37072fd.pth" in err  # the ImageNet ResNet-18 is asked for
    with pytest.raises(SevereError, match="checkpoint-static"):  # a video checkpoint is not an image model
        measure_bias(["synth_motion"], "scratch", tmp_path / "f", data_root=tiny_suite)


def test_bias_values_come_from_the_task_files(tmp_path, monkeypatch):
    import shutil

    import yaml

    from severe_bench.bias import _image_spec, bias_hash, bias_protocol
    from severe_bench.registry import get_task, tasks_dir

    base = bias_protocol(get_task("diving48"))
    assert base["sampling"] == {"segments": 8, "frames_per_segment": 1} and base["input"] == {"resize": 256, "crop": 224}
    assert base["probe"]["momentum"] == 0.9 and base["probe"]["lr"] == 1e-4 and base["probe"]["batch_size"] == 256
    plain = get_task("diving48")
    copy = tmp_path / "tasks"
    shutil.copytree(tasks_dir(), copy)
    cfg = yaml.safe_load((copy / "diving48.yaml").read_text())
    cfg["bias"] = {"sampling": {"segments": 3}}  # a task file overrides one value, keeps the others
    (copy / "diving48.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.setenv("SEVERE_TASKS_DIR", str(copy))
    task = get_task("diving48")
    values = bias_protocol(task)
    assert values["sampling"] == {"segments": 3, "frames_per_segment": 1} and values["probe"] == base["probe"]
    spec = _image_spec(values, {"normalisation": {"mean": [0.5] * 3, "std": [0.5] * 3}}, {"crop": 112}, None, None)
    assert (spec.segments, spec.frames, spec.crop, spec.resize) == (3, 3, 112, 128)  # 256/224 kept
    assert task.protocol_hash == plain.protocol_hash  # the evaluation protocol is not touched
    assert bias_hash(task, "imagenet-tsn", values, None) != bias_hash(plain, "imagenet-tsn", base, None)


def test_bias_checks_out_before_any_work(capsys, blocked_out):
    from severe_bench.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bias", "--measure", "checkpoint-static", "--task", "synth_motion", "--representation",
              str(blocked_out.missing), "--device", "cpu", "--out", str(blocked_out.out)])
    assert exc.value.code != 0
    blocked_out.refused(capsys.readouterr().err)


def test_ssv2_vit_features_use_videomaes_segment_sampling(tmp_path):
    """Bias and CKA features of an SSv2 ViT take the task's test sampling (one frame per segment of the whole
    video, as severe eval), not a strided clip; a CNN task keeps its fps sampling."""
    from severe_bench.data.sample import Sample
    from severe_bench.features import CentreClips, clip_spec_for, task_for
    from severe_bench.synth.encode import write_video
    from severe_bench.video.sampling import test_segment_indices

    vit_info = {"architecture": "vit_b_16", "normalisation": None}
    spec = clip_spec_for(task_for("ssv2", "full", "vit_b_16"), vit_info, frames=4, crop=16)
    assert spec.segment_sampling and spec.sampling() == {"segments": True}
    assert spec.as_dict()["segment_sampling"] is True
    cnn = clip_spec_for(task_for("ucf101", "full", "r2plus1d_18"), {"architecture": "r2plus1d_18"})
    assert not cnn.segment_sampling and "segment_sampling" not in cnn.as_dict()

    levels = np.arange(0, 240, 3, dtype=np.uint8)                      # frame i has grey level 3 i
    frames = np.repeat(levels[:, None, None, None], 32, 1).repeat(32, 2).repeat(3, 3)
    write_video(tmp_path / "v.mp4", frames, 12, codec="libx264", options={"crf": "0"})
    item = CentreClips([Sample(video="v.mp4", label=0, id="v")], tmp_path, spec)[0]
    assert item["ok"]
    got = item["clip"][0, :, 8, 8]  # channel 0 at the centre, per frame, normalised
    mean, std = (spec.mean or [0.0])[0], (spec.std or [1.0])[0]
    grey = (got * std + mean) * 255
    want = levels[test_segment_indices(len(levels), 4, 1)[0]].astype(float)
    assert np.allclose(grey.numpy(), want, atol=4), (grey, want)
