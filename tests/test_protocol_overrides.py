"""Scoped checkpoint overrides (PROTOCOL.md §3.3, §3.4): each reaches only the protocols/tasks it names, the
official protocol hash stays the task's, and what was applied is recorded and visible."""

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from severe_bench.checkpoints.overrides import apply_overrides, overrides_hash, parse_overrides
from severe_bench.checkpoints.registry import load_registry, parse_registry
from severe_bench.cli import cli
from severe_bench.engine.runner import effective_normalisation, for_checkpoint
from severe_bench.errors import CheckpointError, ConfigError
from severe_bench.registry import get_task

REPO = Path(__file__).resolve().parents[1]
REG = load_registry()
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "channel_order": "RGB"}


def _info(name: str) -> dict:
    if name == "scratch":
        return {"name": "scratch", "layout": "scratch", "overrides": REG.scratch_overrides}
    e = REG.get(name)
    return {"name": e.name, "layout": e.layout, "overrides": e.overrides, "normalisation": e.normalisation}


def _runs(task_id: str, checkpoint: str, track=None) -> dict:
    task = get_task(task_id, track=track)
    run, applied = for_checkpoint(task, _info(checkpoint))
    assert run.protocol_hash == task.protocol_hash  # the column tables compare on never moves
    return run.protocol


def test_avid_cma_lr_reaches_only_the_action_recognition_finetunes():
    for tid in ("ucf101", "gym99", "ssv2", "fx_s1", "ucf101_1k", "hmdb51"):
        assert _runs(tid, "avid_cma")["optimizer"]["lr"] == 1e-3, tid
    assert _runs("charades", "avid_cma")["optimizer"]["lr"] == 0.0375  # every method at 0.0375
    assert _runs("ucf101_linear", "avid_cma")["optimizer"]["lr"] == 1e-2  # the common linear lr
    assert _runs("gym99_linear", "avid_cma")["optimizer"]["lr"] == get_task("gym99_linear").protocol["optimizer"]["lr"]
    assert _runs("ucfrep", "avid_cma")["optimizer"]["lr"] == 5e-5
    assert _runs("ucf101", "moco")["optimizer"]["lr"] == 1e-4


def test_tclr_input_convention_is_not_applied_to_charades():
    raw_bgr = {"mean": None, "std": None, "channel_order": "BGR"}
    info = _info("tclr")
    for tid in ("ucf101", "gym99", "ucf101_linear", "ssv2_linear", "ucf101_linear_frozen_bn", "ucf101_linear_cached"):
        assert effective_normalisation(_runs(tid, "tclr"), info) == raw_bgr, tid
    charades = _runs("charades", "tclr")
    assert effective_normalisation(charades, info) == {"mean": [0.45] * 3, "std": [0.225] * 3, "channel_order": "RGB"}
    assert effective_normalisation(_runs("ucf101", "moco"), _info("moco")) == IMAGENET
    # TCLR's linear config also uses 32-frame clips (clip_duration 2.0) where the others use 16
    for tid in ("ucf101_linear", "ucf101_linear_frozen_bn", "ucf101_linear_cached"):
        assert _runs(tid, "tclr")["input"]["frames"] == _runs(tid, "tclr")["test"]["frames"] == 32, tid
    assert _runs("ucf101_linear", "moco")["input"]["frames"] == 16


def test_scratch_trains_with_its_own_reference_schedule():
    ucf = _runs("ucf101", "scratch")
    assert ucf["schedule"]["passes"] == 20 and ucf["schedule"]["milestones"] == [10, 15, 18]
    assert ucf["optimizer"]["weight_decay"] == 1e-4
    for tid in ("gym99", "hmdb51"):
        p = _runs(tid, "scratch")
        assert (p["schedule"]["passes"], p["schedule"]["milestones"], p["optimizer"]["weight_decay"]) == \
            (20, [10, 15, 18], 1e-4), tid
    ssv2 = _runs("ssv2", "scratch")
    assert (ssv2["schedule"]["passes"], ssv2["schedule"]["milestones"], ssv2["optimizer"]["weight_decay"]) == \
        (25, [12, 19, 22], 1e-4)
    assert ssv2["schedule"]["clips_per_video"] == 2
    for tid in ("fx_s1", "ub_s1"):
        p = _runs(tid, "scratch")
        assert p["optimizer"]["weight_decay"] == 1e-5 and p["schedule"]["passes"] == 18, tid
    # the few-sample tasks, Charades and the ViT track use the common values
    for tid, track in (("ucf101_1k", None), ("gym99_1k", None), ("charades", None), ("ucf101", "vit")):
        assert _runs(tid, "scratch", track) == get_task(tid, track=track).protocol, tid


def test_overrides_hash_follows_the_override_values():
    task = get_task("ucf101")
    ov = parse_overrides([{"protocols": ["finetune"], "set": {"optimizer": {"lr": 1e-3}}}], "test")
    ov2 = parse_overrides([{"protocols": ["finetune"], "set": {"optimizer": {"lr": 2e-3}}}], "test")
    (run, applied), (run2, applied2) = apply_overrides(task, ov, "x"), apply_overrides(task, ov2, "x")
    assert applied[0]["replaced"] == {"optimizer.lr": 1e-4} and run.protocol["optimizer"]["lr"] == 1e-3
    assert overrides_hash(applied) != overrides_hash(applied2) and overrides_hash([]) is None
    assert run.protocol_hash == run2.protocol_hash == task.protocol_hash
    assert task.protocol["optimizer"]["lr"] == 1e-4  # the official task is untouched


def test_bad_overrides_are_refused_with_where_they_are():
    with pytest.raises(CheckpointError, match="names no protocols or tasks"):
        parse_overrides([{"set": {"optimizer": {"lr": 1.0}}}], "ck")
    with pytest.raises(CheckpointError, match="unknown protocol"):
        parse_overrides([{"protocols": ["fintune"], "set": {"optimizer": {"lr": 1.0}}}], "ck")
    with pytest.raises(CheckpointError, match="unknown field"):
        parse_overrides([{"tasks": ["ucf101"], "values": {}}], "ck")
    typo = parse_overrides([{"tasks": ["ucf101"], "set": {"optimizer": {"learning_rate": 1.0}}}], "ck")
    with pytest.raises(ConfigError, match=r"checkpoint 'myck' for task ucf101 sets protocol.optimizer.learning_rate"):
        apply_overrides(get_task("ucf101"), typo, "myck")
    data = yaml.safe_load((REPO / "checkpoints.yaml").read_text())
    data["checkpoints"]["avid_cma"]["finetune_overrides"] = {"optimizer": {"lr": 1e-3}}
    with pytest.raises(CheckpointError, match="replaced by scoped 'overrides:'"):
        parse_registry(data, Path("checkpoints.yaml"))


def test_tasks_show_prints_the_protocol_that_runs_for_a_checkpoint():
    runner = CliRunner()
    plain = runner.invoke(cli, ["tasks", "show", "ucf101"])
    avid = runner.invoke(cli, ["tasks", "show", "ucf101", "--checkpoint", "avid_cma"])
    assert plain.exit_code == 0 and avid.exit_code == 0, avid.output
    assert "docs/PROTOCOL.md" in plain.output
    head = plain.output.splitlines()[0]
    assert head == avid.output.splitlines()[0]  # same official protocol hash
    assert "lr: 0.001  # override (avid_cma; protocol value 0.0001)" in avid.output
    assert "lr: 0.0001\n" in plain.output and "override" not in plain.output
    charades = runner.invoke(cli, ["tasks", "show", "charades", "--checkpoint", "avid_cma"])
    assert "no override applies" in charades.output and "lr: 0.0375\n" in charades.output
    tclr = runner.invoke(cli, ["tasks", "show", "charades", "--checkpoint", "tclr"]).output
    assert "channel_order: RGB\n" in tclr and "# override" not in tclr
    scratch = runner.invoke(cli, ["tasks", "show", "ssv2", "--checkpoint", "scratch"]).output
    assert "passes: 25  # override (scratch; protocol value 22)" in scratch
    assert "milestones: [12, 19, 22]  # override (scratch; protocol value [12, 17, 20])" in scratch
    bad = runner.invoke(cli, ["tasks", "show", "ucf101", "--checkpoint", "nope"])
    assert bad.exit_code != 0 and "unknown checkpoint" in str(bad.exception)


TINY_TASK = """\
id: tiny_motion
name: tiny synthetic motion (override test)
include: [_finetune_r2p1d.yaml, _ucf101.yaml]
dataset: {name: synth_motion, builtin: synth, num_classes: 6}
max_videos: {train: 4, test: 2}
protocol:
  input: {frames: 2, fps: 16, crop: 16}
  batch_size: 4
  schedule: {passes: 1, clips_per_video: 1, milestones: [1]}
  test: {clips: 1, frames: 2, fps: 16, resize: 18, crop: 16}
metric: {name: top1, higher_is_better: true, unit: "%"}
"""


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A project home whose scratch entry has an override for a tiny task (so training takes seconds)."""
    home = tmp_path / "home"
    shutil.copytree(REPO / "tasks", home / "tasks")
    (home / "tasks" / "tiny_motion.yaml").write_text(TINY_TASK)
    monkeypatch.setenv("SEVERE_HOME", str(home))
    monkeypatch.setenv("SEVERE_TASKS_DIR", str(home / "tasks"))
    return home


def _write_registry(home: Path, lr: float) -> None:
    data = yaml.safe_load((REPO / "checkpoints.yaml").read_text())
    data["scratch"]["overrides"].append({"tasks": ["tiny_motion"], "set": {"optimizer": {"lr": lr}},
                                         "source": "test"})
    path = home / "checkpoints.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    later = path.stat().st_mtime + (2 if lr != 1e-3 else 0)
    os.utime(path, (later, later))  # the registry cache keys on the mtime


def _eval(root: Path, out: Path, *extra):
    return CliRunner().invoke(cli, ["eval", "-c", "scratch", "-t", "tiny_motion", "--workers", "0",
                                    "--data-root", str(root), "--out", str(out), *extra])


def test_result_records_the_overrides_and_a_changed_override_is_not_reused(home, tmp_path, one_thread):
    from severe_bench.synth import generate_suite

    root = tmp_path / "synth"
    generate_suite(root, seed=0, scale="tiny")
    out = tmp_path / "out"
    _write_registry(home, 1e-3)
    r = _eval(root, out)
    assert r.exit_code == 0, r.output + repr(r.exception)
    assert "checkpoint override (scratch): optimizer.lr 0.0001 -> 0.001" in r.output
    res = json.loads((out / "tiny_motion" / "seed0" / "result.json").read_text())
    proto = res["protocol"]
    assert proto["hash"] == get_task("tiny_motion").protocol_hash
    assert proto["values"]["protocol"]["optimizer"]["lr"] == 1e-4  # official values, hash recomputable
    assert proto["effective"]["optimizer"]["lr"] == 1e-3
    [applied] = proto["checkpoint_overrides"]
    assert applied["checkpoint"] == "scratch" and applied["replaced"] == {"optimizer.lr": 1e-4}
    first_hash = proto["overrides_hash"]
    assert first_hash and "done already" in _eval(root, out).output

    _write_registry(home, 3e-3)  # the override changes: the finished result is not reused silently
    r = _eval(root, out)
    assert r.exit_code != 0 and "checkpoint overrides" in str(r.exception)
    r = _eval(root, out, "--restart")
    assert r.exit_code == 0, r.output + repr(r.exception)
    proto2 = json.loads((out / "tiny_motion" / "seed0" / "result.json").read_text())["protocol"]
    assert proto2["hash"] == proto["hash"] and proto2["effective"]["optimizer"]["lr"] == 3e-3
    assert proto2["overrides_hash"] != first_hash


def test_tasks_show_a_checkpoint_file_gets_the_overrides_of_its_codebase(tmp_path, monkeypatch):
    """An AVID-CMA file given by path (layout detected from its keys) runs with AVID-CMA's scoped lr."""
    import torch

    from severe_bench.models import create_backbone

    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    sd = {f"module.video_model.{k}": v for k, v in create_backbone("r2plus1d_18").state_dict().items()}
    path = tmp_path / "avid_like.pth.tar"
    torch.save({"epoch": 1, "model": sd}, path)
    out = CliRunner().invoke(cli, ["tasks", "show", "gym99", "--checkpoint", str(path)])
    assert out.exit_code == 0, out.output + repr(out.exception)
    assert "lr: 0.001  # override (avid_like; protocol value 0.0001)" in out.output
    charades = CliRunner().invoke(cli, ["tasks", "show", "charades", "--checkpoint", str(path)]).output
    assert "no override applies" in charades


def test_cached_features_are_keyed_by_the_protocol_that_runs():
    """The cached-probe feature store is not reused across an override change (the official hash is the same)."""
    import torch

    from severe_bench.checkpoints import load_checkpoint
    from severe_bench.engine.cached_probe import _provenance
    from severe_bench.engine.context import RunContext

    task = get_task("ucf101_linear_cached")
    ckpt = load_checkpoint("scratch", count_flops=False)
    provenance = []
    for run in (task, for_checkpoint(task, _info("tclr"))[0]):
        ctx = RunContext(task=run, root=REPO, train_samples=[], test_samples=[], num_classes=101, checkpoint=ckpt,
                         normalisation={}, seed=0, device=torch.device("cpu"), work_dir=REPO, log=lambda m: None)
        provenance.append(_provenance(ctx, 4))
    assert provenance[0]["protocol_hash"] == provenance[1]["protocol_hash"]
    assert provenance[0]["effective_protocol_sha256"] != provenance[1]["effective_protocol_sha256"]
