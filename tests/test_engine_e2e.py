"""The engine end to end on CPU: identical results whatever the worker count, and a 2-process torchrun (gloo)
run that writes one result. ViT-S at the smoke sizes: the cheapest model, and its recipe (RandAugment,
random erasing, mixup/cutmix) exercises every random draw of the training path."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from severe_bench.cli import cli

pytestmark = pytest.mark.slow

VIT_SMOKE = ["eval", "-c", "scratch", "--arch", "vit_s_16", "-t", "synth_motion", "--profile", "smoke"]


def _result(out):
    work = out / "synth_motion" / "seed0"
    return json.loads((work / "result.json").read_text()), json.loads((work / "predictions.json").read_text())


def test_worker_count_does_not_change_metrics_or_predictions(tiny_suite, tmp_path):
    runs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        r = CliRunner().invoke(cli, [*VIT_SMOKE, "--workers", str(workers), "--data-root", str(tiny_suite),
                                     "--out", str(out)])
        assert r.exit_code == 0, r.output + repr(r.exception)
        runs[workers] = _result(out)
    (res0, pred0), (res2, pred2) = runs[0], runs[2]
    assert res0["metrics"] == res2["metrics"]
    assert pred0 == pred2
    assert [h["loss"] for h in res0["engine"]["history"]] == [h["loss"] for h in res2["engine"]["history"]]
    assert res0["engine"]["workers"] == 0 and res2["engine"]["workers"] == 2
    assert res0["engine"]["precision"] == "fp32" and res0["engine"]["world_size"] == 1
    log = (tmp_path / "w0" / "synth_motion" / "seed0" / "run.log").read_text()
    assert "pass 2/2: loss" in log and "top1 =" in log


def test_two_process_gloo_run_under_torchrun_writes_one_result(tiny_suite, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        "-m", "severe_bench", *VIT_SMOKE, "--workers", "0", "--device", "cpu",
                        "--data-root", str(tiny_suite), "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    results = list(out.rglob("result.json"))
    assert len(results) == 1
    res, preds = _result(out)
    assert res["engine"]["world_size"] == 2
    assert res["data"]["num_test_scored"] == res["data"]["num_test"]  # both ranks' test videos gathered
    assert len(preds["videos"]) == res["data"]["num_test"]
    assert p.stdout.count("pass 2/2: loss") == 1, "only rank 0 speaks"
