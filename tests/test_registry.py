"""Task registry: every task resolves, the hash follows the protocol values, suites and errors."""

import shutil

import pytest
import yaml

from severe_bench import registry
from severe_bench.cli import cli
from severe_bench.errors import ConfigError, UnknownTaskError
from click.testing import CliRunner

SEVERE_EIGHT = ["ssv2", "gym99", "ucf101_1k", "gym99_1k", "fx_s1", "ub_s1", "ucfrep", "charades"]
EXTRA = ["ucf101", "hmdb51", "gym_vault", "gym_floor", "gym288", "diving48", "ntu60", "ek100_verb", "mini_ssv2",
         "ikeafa", "uav_human"]


def test_all_required_tasks_resolve():
    ids = registry.list_task_ids()
    for tid in SEVERE_EIGHT + EXTRA:
        assert tid in ids
        t = registry.get_task(tid)
        assert t.dataset["format"] and t.dataset["files"] and t.dataset["source"]
        assert t.metric["name"] in {"top1", "mean_class_accuracy", "map", "counting_error"}
        assert len(t.protocol_hash) == 16


def test_protocol_values_from_protocol_md():
    ucf = registry.get_task("ucf101_1k").protocol
    assert ucf["input"] == {"frames": 32, "fps": 16, "crop": 112}
    assert ucf["optimizer"] == {"name": "adam", "lr": 1e-4, "weight_decay": 0.0}
    assert ucf["schedule"]["passes"] == 16 and ucf["schedule"]["clips_per_video"] == 10
    assert ucf["schedule"]["milestones"] == [6, 10, 14] and ucf["schedule"]["gamma"] == 0.3
    assert ucf["test"]["clips"] == 10 and ucf["test"]["resize"] == 128
    ssv2 = registry.get_task("ssv2").protocol["schedule"]
    assert (ssv2["passes"], ssv2["clips_per_video"], ssv2["milestones"]) == (22, 2, [12, 17, 20])
    fx = registry.get_task("fx_s1")
    assert fx.protocol["schedule"]["milestones"] == [7, 12, 16] and fx.protocol["schedule"]["passes"] == 18
    assert fx.dataset["label_filter"] == {"min": 6, "max": 16, "offset": -6} and fx.num_classes == 11
    assert registry.get_task("ub_s1").dataset["label_filter"]["min"] == 74
    assert registry.get_task("ucf101_1k").train_subset == {"rule": "class_balanced", "size": 1000, "seed": 99999, "rng": "numpy_random_state"}
    assert registry.get_task("ucfrep").metric["higher_is_better"] is False
    assert registry.get_task("charades").protocol["loss"] == "bce"


def test_suites():
    assert registry.suite_tasks("severe") == SEVERE_EIGHT
    for name in ("severe-full", "synapt", "synth"):
        for tid in registry.suite_tasks(name):
            registry.get_task(tid)


def test_hash_changes_with_any_protocol_value_and_not_with_descriptions(tmp_path, monkeypatch):
    shutil.copytree(registry.tasks_dir(), tmp_path / "tasks")
    monkeypatch.setenv("SEVERE_TASKS_DIR", str(tmp_path / "tasks"))
    base = registry.get_task("fx_s1").protocol_hash
    # a description does not change the numbers
    p = tmp_path / "tasks" / "fx_s1.yaml"
    cfg = yaml.safe_load(p.read_text())
    cfg["description"] = "something else"
    p.write_text(yaml.safe_dump(cfg))
    assert registry.get_task("fx_s1").protocol_hash == base
    # a value in the shared base file changes every task that includes it
    b = tmp_path / "tasks" / "_finetune_r2p1d.yaml"
    b.write_text(b.read_text().replace("lr: 1.0e-4", "lr: 2.0e-4"))
    assert registry.get_task("fx_s1").protocol_hash != base
    # profiles and tracks are different protocols
    assert registry.get_task("ucf101", profile="smoke").protocol_hash != registry.get_task("ucf101").protocol_hash
    assert registry.get_task("ucf101", track="vit").protocol_hash != registry.get_task("ucf101").protocol_hash


def test_vit_track_uses_videomae_recipe():
    t = registry.get_task("ssv2", track="vit")
    assert t.protocol["name"] == "finetune_vit" and t.protocol["schedule"]["passes"] == 40
    assert t.protocol["test"]["clips"] == 2 and t.protocol["test"]["spatial_crops"] == 3
    assert registry.get_task("ucf101", track="vit").protocol["schedule"]["passes"] == 100


def test_unknown_task_lists_valid_ids():
    with pytest.raises(UnknownTaskError, match="valid task ids: .*fx_s1"):
        registry.get_task("fx_s2")


def test_unknown_profile():
    with pytest.raises(ConfigError, match="known profiles"):
        registry.get_task("ucf101", profile="turbo")


def test_label_filter_reindexes():
    from severe_bench.data.sample import Sample

    samples = [Sample(video=f"v{i}", label=i) for i in range(20)]
    kept = registry.apply_label_filter(samples, {"min": 6, "max": 16, "offset": -6})
    assert [s.label for s in kept] == list(range(11))
    assert kept[0].video == "v6"


def test_cli_tasks_list_and_show():
    r = CliRunner().invoke(cli, ["tasks", "list"])
    assert r.exit_code == 0, r.output
    assert "fx_s1" in r.output and "severe: ssv2 gym99" in r.output
    r = CliRunner().invoke(cli, ["tasks", "show", "ub_s1"])
    assert r.exit_code == 0 and "protocol hash" in r.output and "min: 74" in r.output


def test_missing_data_root_named(tmp_path):
    from severe_bench.errors import MissingFileError

    t = registry.get_task("ucf101")
    with pytest.raises(MissingFileError, match="does not exist"):
        registry.resolve_data_root(t, tmp_path / "nope")


def test_linear_tasks_have_both_tracks():
    cnn = registry.get_task("ucf101_linear").protocol
    assert cnn["name"] == "linear" and cnn["freeze_backbone"] and cnn["optimizer"]["lr"] == 1e-2
    assert cnn["schedule"]["milestones"] == [4, 8, 10] and cnn["batch_size"] == 128 and cnn["input"]["frames"] == 16
    vit = registry.get_task("ucf101_linear", track="vit").protocol
    assert vit["head"]["batchnorm"] is True and vit["optimizer"] == {
        "name": "adamw", "base_lr": 1e-2, "lr_scale_batch": 256, "betas": [0.9, 0.999], "weight_decay": 0.0}
    assert vit["schedule"]["passes"] == 100 and vit["freeze_backbone"]
    with pytest.raises(Exception, match="no ViT track"):
        registry.get_task("ucfrep", track="vit")
