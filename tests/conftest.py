"""Fixtures shared by several test modules."""

import os
import subprocess
import sys

import pytest
import torch


@pytest.fixture
def torchrun(tmp_path):
    """``torchrun(script_text, *args)``: the script run by 2 gloo ranks (torchrun --standalone); returns the
    combined output, failing the test on a non-zero exit or a run that outlives ``timeout`` (a hang)."""

    def run(script_text: str, *args, timeout: float = 90) -> str:
        script = tmp_path / "ddp_job.py"
        script.write_text(script_text)
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
        log = tmp_path / "ddp.log"
        with log.open("w") as f:  # a file, not a pipe: a stuck worker cannot block reading its output
            proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                                     "--nproc_per_node", "2", str(script), *map(str, args)],
                                    env=env, stdout=f, stderr=subprocess.STDOUT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.terminate()  # torchrun stops its workers (they run in sessions of their own)
                proc.wait(timeout=30)
                pytest.fail("the 2-rank run hung:\n" + log.read_text()[-3000:])
        output = log.read_text()
        assert proc.returncode == 0, output[-3000:]
        return output

    return run


@pytest.fixture(scope="module")
def one_thread():
    """Tiny clips: one intra-op thread is faster than two, and immune to a busy machine's oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- leaderboard: real result folders from tiny real `severe eval` runs (once per session) ------------------

LEADERBOARD_TINY_PROTOCOL = {  # the test registry's *official* synth_motion protocol: CPU-tiny, profile full
    "input": {"frames": 4, "fps": 8, "crop": 32},
    "batch_size": 6,
    "schedule": {"passes": 1, "clips_per_video": 1, "milestones": [1], "gamma": 0.3},
    "test": {"clips": 1, "frames": 4, "fps": 8, "resize": 36, "crop": 32},
}


@pytest.fixture(scope="session")
def leaderboard_runs(tmp_path_factory):
    """A task registry (SEVERE_TASKS_DIR) that is the project's, except that synth_motion's official protocol
    is tiny; the synth_motion data; and two real scratch evaluations in it: the official (full) profile and
    the smoke profile. Returns a namespace with ``tasks_dir``, ``data_root``, ``full`` and ``smoke`` folders."""
    import shutil
    import types

    import yaml
    from click.testing import CliRunner

    from severe_bench.cli import cli
    from severe_bench.registry import deep_merge
    from severe_bench.resources import resource_path
    from severe_bench.synth import motion
    from severe_bench.synth.suite import SCALES

    base = tmp_path_factory.mktemp("leaderboard_runs")
    tasks = base / "tasks"
    shutil.copytree(resource_path("tasks"), tasks)
    spec = yaml.safe_load((tasks / "synth_motion.yaml").read_text())
    spec["protocol"] = deep_merge(spec["protocol"], LEADERBOARD_TINY_PROTOCOL)
    (tasks / "synth_motion.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (tasks / "_profile_smoke.yaml").write_text(yaml.safe_dump(
        {"max_videos": {"train": 12, "test": 6}, "by_protocol": {"finetune": LEADERBOARD_TINY_PROTOCOL}}))
    data = base / "data"
    motion.generate(data / "synth_motion", seed=0, cfg=SCALES["tiny"]["synth_motion"])
    runs = {}
    for profile in ("full", "smoke"):
        out = base / f"run_{profile}"
        r = CliRunner().invoke(cli, ["eval", "-c", "scratch", "-t", "synth_motion", "--profile", profile,
                                     "--workers", "0", "--data-root", str(data), "--out", str(out)],
                               env={"SEVERE_TASKS_DIR": str(tasks)})
        assert r.exit_code == 0, r.output + repr(r.exception)
        runs[profile] = out
    return types.SimpleNamespace(tasks_dir=tasks, data_root=data, full=runs["full"], smoke=runs["smoke"])


ARTIFACTS: list = []  # (what, path) of files tests keep for a person to look at; listed after the run


def pytest_terminal_summary(terminalreporter):
    if ARTIFACTS:
        terminalreporter.section("test artifacts")
        for what, path in ARTIFACTS:
            terminalreporter.write_line(f"{what}: {path}")


@pytest.fixture(scope="session")
def keep_artifact(request):
    """``keep_artifact(name) -> path`` for a file a person should look at after the run ($SEVERE_TEST_ARTIFACTS,
    else .cache/test-artifacts in the checkout, which git ignores); every kept path is printed in the summary."""
    import os
    from pathlib import Path

    root = Path(os.environ.get("SEVERE_TEST_ARTIFACTS") or request.config.rootpath / ".cache" / "test-artifacts")
    root.mkdir(parents=True, exist_ok=True)

    def keep(name: str) -> Path:
        path = root / name
        ARTIFACTS.append((name, path))
        return path
    return keep


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory):
    """The built-in synthetic suite at its tiny scale, generated once per test session. Read-only: a test that
    damages or edits videos copies what it needs first."""
    from severe_bench.synth import generate_suite

    root = tmp_path_factory.mktemp("synth")
    generate_suite(root, seed=0, scale="tiny")
    return root


@pytest.fixture(scope="session")
def learns_above_chance():
    """bench/learns_above_chance.py (what bench/gpu_check.sh reports), imported as a module."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "learns_above_chance.py"
    spec = importlib.util.spec_from_file_location("learns_above_chance", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(params=[False, True], ids=["out-is-a-file", "out-under-a-file"])
def blocked_out(request, tmp_path):
    """An ``--out`` that cannot be a folder (a file, or a path under one), a checkpoint path that does not
    exist, and ``refused(err)``: the command's stderr names the --out problem, before any checkpoint is read."""
    from types import SimpleNamespace

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    def refused(err: str) -> None:
        assert "is a file" in err and str(blocker) in err, err
        assert "no-such-checkpoint" not in err and "Traceback" not in err
        assert blocker.read_text() == "not a folder"  # the file in the way is left as it was

    return SimpleNamespace(out=blocker / "out" if request.param else blocker,
                           missing=tmp_path / "no-such-checkpoint.pt", refused=refused)
