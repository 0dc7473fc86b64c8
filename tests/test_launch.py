"""`severe eval --launcher`: one submitit job per (task, seed), run here through submitit's local executor;
a preempted job requeues itself without discarding its saved state."""

import json

import pytest
from click.testing import CliRunner

from severe_bench.cli import cli
from severe_bench.engine.launch import EvalJob, submit
from severe_bench.engine.runner import EvalOptions
from severe_bench.errors import ConfigError
from severe_bench.synth import generate_suite

pytestmark = pytest.mark.slow


def test_local_launcher_runs_one_job_per_task_and_seed(tmp_path):
    root = tmp_path / "synth"
    generate_suite(root, seed=0, scale="tiny")
    out = tmp_path / "out"
    opts = EvalOptions(checkpoint="scratch", out_dir=out, data_root=str(root), profile="smoke", seeds=(0, 1),
                       workers=0, arch="vit_s_16")
    jobs = submit(["synth_motion"], opts, "local", gpus=0, time_min=10, cpus_per_gpu=1)
    assert len(jobs) == 2
    written = [p for job in jobs for p in job.result()]
    assert sorted(written) == sorted(str(out / "synth_motion" / f"seed{s}" / "result.json") for s in (0, 1))
    for s in (0, 1):
        res = json.loads((out / "synth_motion" / f"seed{s}" / "result.json").read_text())
        assert res["seed"] == s and res["model"]["architecture"] == "vit_s_16"
    assert (out / "_submitit").is_dir()


def test_a_requeued_job_resumes_instead_of_restarting(tmp_path):
    job = EvalJob("synth_motion", 3, {"checkpoint": "scratch", "out_dir": str(tmp_path), "restart": True})
    again = job.checkpoint()
    requeued = again.function
    assert isinstance(requeued, EvalJob) and (requeued.task_id, requeued.seed) == ("synth_motion", 3)
    assert requeued.opts["restart"] is False and requeued.opts["out_dir"] == str(tmp_path)


def test_launcher_option_errors_are_clear(tmp_path):
    opts = EvalOptions(checkpoint="scratch", out_dir=tmp_path)
    with pytest.raises(ConfigError, match="--partition"):
        submit(["synth_motion"], opts, "slurm")
    r = CliRunner().invoke(cli, ["eval", "-c", "scratch", "-t", "no_such_task", "--launcher", "local",
                                 "--out", str(tmp_path)])
    assert r.exit_code != 0 and "no_such_task" in (r.output + str(r.exception))
