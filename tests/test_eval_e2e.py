"""The synthetic suite end to end through `severe eval` (CPU, smoke profile, tiny generated suite)."""

import json
import shutil

import pytest
from click.testing import CliRunner

from severe_bench.cli import cli
from severe_bench.engine.predictions import recompute_metrics
from severe_bench.registry import suite_tasks
from severe_bench.results import validate_result

pytestmark = pytest.mark.slow


def _eval(args):
    r = CliRunner().invoke(cli, ["eval", "--checkpoint", "scratch", "--profile", "smoke", "--workers", "0", *args])
    assert r.exit_code == 0, r.output + repr(r.exception)
    return r.output


def test_synth_suite_end_to_end(tiny_suite, tmp_path, learns_above_chance):
    out = tmp_path / "run"
    head = _git_head()
    log = _eval(["--suite", "synth", "--data-root", str(tiny_suite), "--out", str(out)])
    for tid in suite_tasks("synth"):
        res = json.loads((out / tid / "seed0" / "result.json").read_text())
        assert res["schema"] == "severe-bench/result/v1"
        assert res["task"]["id"] == tid
        assert len(res["protocol"]["hash"]) == 16 and res["protocol"]["profile"] == "smoke"
        assert res["protocol"]["comparable"] is False
        assert res["metric"]["name"] in res["metrics"]
        assert res["metric"]["value"] is not None
        assert res["model"]["architecture"] == "r2plus1d_18" and res["model"]["params"] > 30e6
        assert res["seed"] == 0 and res["code_version"] and res["device"]["type"] == "cpu"
        assert res["wall_time_s"] > 0
        assert res["data"]["unreadable_videos"] == {"count": 0, "paths": []}
        # predictions.json holds per-video scores and labels: the metrics recompute from it exactly
        preds = json.loads((out / tid / "seed0" / "predictions.json").read_text())
        assert preds["schema"] == "severe-bench/predictions/v1" and len(preds["videos"]) == res["data"]["num_test"]
        again = recompute_metrics(preds)
        for name, value in res["metrics"].items():
            if isinstance(value, float):
                assert again[name] == pytest.approx(value, rel=1e-12, abs=1e-12), (tid, name)
        assert res["data"]["complete"] is True and res["data"]["official_counts"] is None  # generated data
        _check_provenance(res, head)
        assert validate_result(res) == []  # the protocol hash recomputes from the recorded values
    motion = json.loads((out / "synth_motion" / "seed0" / "result.json").read_text())
    assert len(motion["data"]["class_names"]) == motion["data"]["num_classes"] == 6
    few = json.loads((out / "synth_few" / "seed0" / "result.json").read_text())
    assert few["data"]["train_subset_hash"] and (out / "synth_few" / "seed0" / "train_subset.txt").exists()
    fine = json.loads((out / "synth_fine" / "seed0" / "result.json").read_text())
    assert fine["metric"]["name"] == "mean_class_accuracy" and fine["data"]["num_classes"] == 10
    assert "per_class_accuracy" in fine["metrics"]
    ml = json.loads((out / "synth_multilabel" / "seed0" / "result.json").read_text())
    assert ml["metric"]["name"] == "map" and 0 <= ml["metric"]["value"] <= 100
    cnt = json.loads((out / "synth_count" / "seed0" / "result.json").read_text())
    assert cnt["metric"]["name"] == "counting_error" and cnt["metric"]["higher_is_better"] is False
    _check_learns_report(out, learns_above_chance)
    # a second run finds every result done and trains nothing
    log2 = _eval(["--suite", "synth", "--data-root", str(tiny_suite), "--out", str(out)])
    assert log2.count("done already") == len(suite_tasks("synth"))


def _check_learns_report(out, mod):
    """bench/learns_above_chance.py (what gpu_check.sh reports) reads every task of a real run and has a chance
    baseline for each metric the suite uses."""
    table = {r["task"]: r for r in mod.rows(out)}
    assert set(table) == set(suite_tasks("synth"))
    for r in table.values():
        assert r["chance"] is not None and r["gap_closed"] is not None, r
        perfect = mod.PERFECT[r["metric"]]
        assert r["gap_closed"] == pytest.approx((r["value"] - r["chance"]) / (perfect - r["chance"]))
        assert r["learns"] is (r["gap_closed"] >= mod.WELL_ABOVE)
    assert table["synth_motion"]["chance"] == pytest.approx(100 / 6)


def _git_head() -> str:
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def _check_provenance(res, head):
    """What a reviewer audits: code, libraries, command, lists, per-pass history, class names, FLOP input."""
    import sys

    assert res["code"]["source"] == "git" and res["code"]["commit"] == head
    assert isinstance(res["code"]["dirty"], bool)
    assert res["code_version"].startswith(res["code"]["version"] + "+g" + head[:7])
    libs = res["libraries"]
    assert libs["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert libs["torch"] and libs["torchvision"] and libs["numpy"] and (libs["decord"] or libs["av"])
    assert res["command"]["argv"][0] and isinstance(res["command"]["line"], str)
    assert res["device"]["gpu_count"] == 0 and res["device"]["gpu_names"] == []
    data = res["data"]
    assert len(data["train_list_sha256"]) == 64 and len(data["test_list_sha256"]) == 64
    assert data["num_test_full"] >= data["num_test"] >= data["num_test_scored"]
    assert data["video_backend"] in ("decord", "pyav")
    passes = res["protocol"]["values"]["protocol"]["schedule"]["passes"]
    hist = res["engine"]["history"]
    assert [h["pass"] for h in hist] == list(range(1, passes + 1))
    assert all(h["lr"] > 0 and h["seconds"] > 0 and h["loss"] is not None and h["steps"] > 0 for h in hist)
    if data["class_names"] is not None:  # formats with a class list (UCF101's classInd.txt) name them
        assert len(data["class_names"]) == data["num_classes"]
        assert "per_class_accuracy" in res["metrics"] or "per_class_ap" in res["metrics"]
    if res["model"]["gflops"] is not None:
        frames = res["protocol"]["values"]["protocol"]["input"]["frames"]
        assert res["model"]["gflops_input"][:3] == [1, 3, frames]


def test_interrupted_run_resumes(tiny_suite, tmp_path, monkeypatch):
    from severe_bench.engine import trainer

    out = tmp_path / "run"
    real_save = trainer.save_state

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt  # killed right after the first pass was saved

    monkeypatch.setattr(trainer, "save_state", save_then_die)
    r = CliRunner().invoke(cli, ["eval", "-c", "scratch", "-t", "synth_motion", "--profile", "smoke", "--workers", "0",
                                 "--data-root", str(tiny_suite), "--out", str(out)])
    assert r.exit_code != 0
    assert (out / "synth_motion" / "seed0" / "state.pt").exists()
    assert not (out / "synth_motion" / "seed0" / "result.json").exists()
    import torch

    (first_pass,) = torch.load(out / "synth_motion" / "seed0" / "state.pt", weights_only=True)["history"]
    monkeypatch.setattr(trainer, "save_state", real_save)
    log = _eval(["-t", "synth_motion", "--data-root", str(tiny_suite), "--out", str(out)])
    assert "resuming from pass 1/2" in log
    assert "pass 1/2:" not in log  # the finished pass is not trained again
    res = json.loads((out / "synth_motion" / "seed0" / "result.json").read_text())
    # the pass trained before the interruption keeps its loss and lr in the history
    hist = res["engine"]["history"]
    assert [h["pass"] for h in hist] == [1, 2] and hist[0] == first_pass


def test_corrupt_video_counted_not_replaced(tiny_suite, tmp_path):
    root = tmp_path / "synth"
    shutil.copytree(tiny_suite / "synth_motion", root / "synth_motion")
    testlist = (root / "synth_motion" / "ucfTrainTestlist" / "testlist01.txt").read_text().split()
    victim = testlist[0].strip()
    (root / "synth_motion" / "UCF-101" / victim).write_bytes(b"\x00not a video" * 100)
    out = tmp_path / "run"
    _eval(["-t", "synth_motion", "--data-root", str(root), "--out", str(out)])
    res = json.loads((out / "synth_motion" / "seed0" / "result.json").read_text())
    assert res["data"]["unreadable_videos"]["count"] == 1
    assert res["data"]["unreadable_videos"]["paths"] == [f"UCF-101/{victim}"]
    assert res["data"]["num_test_scored"] == res["data"]["num_test"] - 1


def test_missing_root_is_a_clear_error(tmp_path):
    r = CliRunner().invoke(cli, ["eval", "-c", "scratch", "-t", "ucf101", "--out", str(tmp_path / "o"),
                                 "--data-root", str(tmp_path / "nothing")])
    assert r.exit_code != 0 and "does not exist" in str(r.exception)


def test_user_mistakes_print_a_message_not_a_traceback(tmp_path):
    import subprocess
    import sys

    for args in (["eval", "-c", "scratch", "-t", "fx_s2", "--out", str(tmp_path)],
                 ["eval", "-c", str(tmp_path / "missing.pth"), "-t", "ucf101", "--out", str(tmp_path)],
                 ["data", "list", "ucf101", "--root", str(tmp_path / "nowhere")]):
        p = subprocess.run([sys.executable, "-m", "severe_bench", *args], capture_output=True, text=True)
        assert p.returncode != 0
        assert "Traceback" not in p.stderr, p.stderr
        assert p.stderr.strip(), "an error message is printed"


def test_a_state_of_another_run_is_never_resumed(tiny_suite, tmp_path):
    out = tmp_path / "run"
    work = out / "synth_motion" / "seed0"
    work.mkdir(parents=True)
    (work / "state.pt").write_bytes(b"left over")  # no run.json: unknown provenance
    r = CliRunner().invoke(cli, ["eval", "-c", "scratch", "-t", "synth_motion", "--profile", "smoke", "--workers", "0",
                                 "--data-root", str(tiny_suite), "--out", str(out)])
    assert r.exit_code != 0 and "no run.json" in str(r.exception)
    import json as _json

    (work / "run.json").write_text(_json.dumps({"protocol_hash": "0" * 16, "checkpoint_sha256": None, "seed": 0}))
    r = CliRunner().invoke(cli, ["eval", "-c", "scratch", "-t", "synth_motion", "--profile", "smoke", "--workers", "0",
                                 "--data-root", str(tiny_suite), "--out", str(out)])
    assert r.exit_code != 0 and "different protocol" in str(r.exception)


def test_same_seed_same_numbers(tiny_suite, tmp_path):
    """A scratch run is reproducible: same seed -> identical predictions (weights, head, clips, order)."""
    preds = []
    for name in ("a", "b"):
        out = tmp_path / name
        _eval(["-t", "synth_multilabel", "--data-root", str(tiny_suite), "--out", str(out)])
        res = json.loads((out / "synth_multilabel" / "seed0" / "result.json").read_text())
        preds.append(res["metrics"])
    assert preds[0] == preds[1]


def test_vit_linear_probe_keeps_the_encoder_frozen(tiny_suite, tmp_path, monkeypatch):
    """A ViT checkpoint on a linear task runs the §6 probe: BatchNorm1d + Linear on a frozen encoder."""
    import torch

    from severe_bench.engine import finetune

    seen = {}
    real_run = finetune.run

    def spy(ctx):
        before = {k: v.clone() for k, v in ctx.checkpoint.backbone.state_dict().items()}
        out = real_run(ctx)
        after = ctx.checkpoint.backbone.state_dict()
        seen["unchanged"] = all(torch.equal(before[k], after[k]) for k in before)
        return out

    monkeypatch.setattr(finetune, "run", spy)
    out = tmp_path / "run"
    _eval(["--arch", "vit_s_16", "-t", "synth_motion_linear", "--data-root", str(tiny_suite), "--out", str(out)])
    res = json.loads((out / "synth_motion_linear" / "seed0" / "result.json").read_text())
    assert res["protocol"]["name"] == "linear" and res["protocol"]["track"] == "vit"
    assert res["protocol"]["values"]["protocol"]["head"]["batchnorm"] is True
    assert res["model"]["architecture"] == "vit_s_16" and res["metric"]["value"] is not None
    assert seen["unchanged"], "the frozen encoder must not change"
