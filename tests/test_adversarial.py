"""Broken and hostile inputs through the CLI (issue 8): each case asserts the exit code, the message, and that
nothing was written or lost. Real small inputs only: result JSONs as ``severe eval`` writes them, a real
checkpoint file with non-finite weights, the tiny synthetic suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from severe_bench.cli import main
from severe_bench.results import validate_result
from test_table import protocol_of, run_cli, write_result


def _snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes: what a refused command must leave untouched (the run lock,
    empty and taken by every run of a task and seed, aside)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "run.lock"}


def _no_traceback(*texts):
    for t in texts:
        assert "Traceback" not in t, t


@pytest.fixture(scope="module")
def nan_checkpoint(tmp_path_factory):
    """An R(2+1)D-18 in torchvision layout whose floating-point tensors are all NaN."""
    from severe_bench.models import create_backbone

    state = create_backbone("r2plus1d_18").state_dict()
    path = tmp_path_factory.mktemp("ckpt") / "all_nan.pth"
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}, path)
    return path


# --- results are validated when read -------------------------------------------------------------------

def _edit(path: Path, change) -> Path:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def _forge(doc, dotted, value):
    *parents, leaf = dotted.split(".")
    cur = doc
    for k in parents:
        cur = cur[k]
    cur[leaf] = value


FORGERIES = {
    "top1 250 %": (("metric.value", 250.0), ("metrics.top1", 250.0)),
    "top1 -40 %": (("metric.value", -40.0), ("metrics.top1", -40.0)),
    "metric differs from metrics": (("metric.value", 99.0),),
    "protocol hash edited": (("protocol.hash", "0" * 16),),
    "protocol values edited": (("protocol.values.variant", "other"),),
    "seed as text": (("seed", "zero"),),
    "higher_is_better flipped": (("metric.higher_is_better", False),),
    "negative counts": (("data.num_train", -5),),
}


def test_valid_results_have_no_problems(tmp_path):
    doc = json.loads(write_result(tmp_path, "ssv2", "Net", 60.0).read_text())
    assert validate_result(doc) == []
    doc["provenance"] = {"git": {"dirty": False}}  # later versions add fields: accepted
    assert validate_result(doc) == []
    count = json.loads(write_result(tmp_path, "ucfrep", "Net", 0.15).read_text())
    assert validate_result(count) == []
    count["metric"]["value"] = count["metrics"]["counting_error"] = -0.1
    assert any("outside the range of counting_error" in p for p in validate_result(count))


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_results_are_named_in_an_error(tmp_path, capsys, name):
    d = tmp_path / "res"
    write_result(d, "ssv2", "Good", 60.0)
    bad = _edit(write_result(d, "ssv2", "Forged", 60.0),
                lambda doc: [_forge(doc, k, v) for k, v in FORGERIES[name]])
    assert validate_result(json.loads(bad.read_text()))
    code, out, err = run_cli(["table", str(d)], capsys)
    assert code != 0 and str(bad) in err and "--skip-invalid" in err and out == ""
    _no_traceback(out, err)
    code, out, err = run_cli(["table", str(d), "--skip-invalid", "--format", "csv"], capsys)
    assert code == 0 and str(bad) in err and "left out 1 invalid" in err
    assert "Good" in out and "Forged" not in out


def test_smoke_result_edited_to_comparable_is_refused(tmp_path, capsys):
    d = tmp_path / "res"
    smoke = write_result(d, "ssv2", "Quick", 99.0, comparable=False, protocol="smoke")

    def promote(doc):
        doc["protocol"]["profile"], doc["protocol"]["comparable"] = "full", True

    _edit(smoke, promote)
    problems = validate_result(json.loads(smoke.read_text()))
    assert any("profile" in p for p in problems)
    # also editing the recorded values breaks the hash
    _edit(smoke, lambda doc: doc["protocol"]["values"].update(profile="full"))
    assert any("does not match the recorded protocol values" in p
               for p in validate_result(json.loads(smoke.read_text())))
    # comparable claimed by a smoke profile that is consistent otherwise
    values, h = protocol_of("smoke", comparable=False)
    doc = json.loads(smoke.read_text())
    doc["protocol"].update(values=values, hash=h, profile="smoke", comparable=True)
    assert any("cannot be comparable" in p for p in validate_result(doc))
    code, out, err = run_cli(["table", str(d), "--with-reference"], capsys)
    assert code != 0 and str(smoke) in err
    _no_traceback(out, err)


def test_damaged_result_in_a_folder_is_not_skipped_silently(tmp_path, capsys):
    d = tmp_path / "res"
    for seed in range(2):
        write_result(d / f"seed{seed}", "ssv2", "Net", 60.0 + seed, seed=seed)
    damaged = next((d / "seed1").glob("*.json"))
    damaged.write_bytes(damaged.read_bytes()[:200])  # cut short
    (d / "seed1" / "result.json").write_text('{"schema": "other"}')  # a result.json must be a result
    code, out, err = run_cli(["table", str(d)], capsys)
    assert code != 0 and str(damaged) in err and str(d / "seed1" / "result.json") in err
    assert "damaged result JSON" in err
    _no_traceback(out, err)
    code, out, err = run_cli(["table", str(d), "--skip-invalid", "--format", "csv"], capsys)
    assert code == 0 and "left out 2 invalid" in err


def test_deeply_nested_json_is_an_error_not_a_traceback(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code, out, err = run_cli(["table", str(deep)], capsys)
    assert code != 0 and "nested too deeply" in err and str(deep) in err
    _no_traceback(out, err)
    doc = json.loads(write_result(tmp_path / "r", "ssv2", "Net", 60.0).read_text())
    nested = {}
    cur = nested
    for _ in range(5000):
        cur["x"] = {}
        cur = cur["x"]
    doc["protocol"]["values"] = nested  # parses (built in Python) but is too deep to hash
    assert validate_result(doc)


def test_plot_validates_too(tmp_path, capsys):
    d = tmp_path / "res"
    bad = _edit(write_result(d, "ssv2", "Net", 60.0), lambda doc: _forge(doc, "metric.value", 250.0))
    out_dir = tmp_path / "fig"
    code, out, err = run_cli(["plot", str(d), "--kind", "factor-bars", "--out", str(out_dir)], capsys)
    assert code != 0 and str(bad) in err
    assert not out_dir.exists()
    _no_traceback(out, err)


# --- severe eval: damaged files in --out, non-finite training ------------------------------------------

def _eval_cli(capsys, *args):
    return run_cli(["eval", "--profile", "smoke", "--workers", "0", *args], capsys)


def test_damaged_result_in_out_names_it_and_restart(tiny_suite, tmp_path, capsys):
    work = tmp_path / "out" / "synth_motion" / "seed0"
    work.mkdir(parents=True)
    for content in (b"{\"schema\": \"severe-bench/result/v1\", \"task\": ", b"\x80\x81garbage", b"[]"):
        (work / "result.json").write_bytes(content)
        before = _snapshot(tmp_path / "out")
        code, out, err = _eval_cli(capsys, "-c", "scratch", "-t", "synth_motion", "--data-root", str(tiny_suite),
                                   "--out", str(tmp_path / "out"))
        assert code != 0 and str(work / "result.json") in err and "--restart" in err
        _no_traceback(out, err)
        assert _snapshot(tmp_path / "out") == before  # nothing written, nothing lost


def test_non_finite_loss_stops_at_the_first_step(tiny_suite, nan_checkpoint, tmp_path, capsys):
    out_dir = tmp_path / "out"
    args = ("-c", str(nan_checkpoint), "-t", "synth_motion", "--data-root", str(tiny_suite), "--out", str(out_dir))
    code, out, err = _eval_cli(capsys, *args)
    assert code != 0 and "loss became non-finite in pass 1 (by step 1)" in err
    _no_traceback(out, err)
    work = out_dir / "synth_motion" / "seed0"
    assert not (work / "state.pt").exists() and not (work / "result.json").exists()  # no state that cannot finish
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]
    # a damaged state of this run: a clear error that says --restart, the file kept for the user to inspect
    (work / "state.pt").write_bytes(b"PK\x03\x04 truncated zip")
    code, out, err = _eval_cli(capsys, *args)
    assert code != 0 and str(work / "state.pt") in err and "damaged training state" in err and "--restart" in err
    _no_traceback(out, err)
    assert (work / "state.pt").read_bytes() == b"PK\x03\x04 truncated zip"


# --- checkpoint files: damaged, random, truncated, non-finite ------------------------------------------

@pytest.fixture(scope="module")
def bad_checkpoints(tmp_path_factory, nan_checkpoint):
    d = tmp_path_factory.mktemp("bad")
    data = nan_checkpoint.read_bytes()
    files = {
        "random_0x80": b"\x80" + bytes(range(256)) * 40,          # looks like a pickle stream, is not one
        "truncated_zip": data[: len(data) // 2],                  # a download cut in half
        "empty": b"",
        "text": b"hello, this is not a checkpoint\n" * 10,
    }
    for name, blob in files.items():
        (d / f"{name}.pth").write_bytes(blob)
    return d


@pytest.mark.parametrize("trust", [False, True], ids=["safe", "trusted"])
def test_damaged_checkpoints_are_clear_errors(bad_checkpoints, capsys, trust):
    expected = {"random_0x80": "pickle stream without torch's header", "truncated_zip": "incomplete",
                "empty": "empty", "text": "not a PyTorch checkpoint"}
    for name, words in expected.items():
        path = bad_checkpoints / f"{name}.pth"
        code, out, err = run_cli(["checkpoints", "verify", str(path)] + (["--trust-checkpoint"] if trust else []),
                                 capsys)
        assert code == 2 and words in err and str(path) in err, (name, err)
        assert "--trust-checkpoint" not in err  # nothing here is a matter of trust
        _no_traceback(out, err)


def test_verify_reports_non_finite_tensors(nan_checkpoint, capsys):
    code, out, err = run_cli(["checkpoints", "verify", str(nan_checkpoint)], capsys)
    assert code == 1 and "non-finite (NaN or inf)" in out and "FAILED: the file holds NaN" in out
    assert "stem.0.weight" in out
    code, out, _ = run_cli(["checkpoints", "verify", str(nan_checkpoint), "--json"], capsys)
    report = json.loads(out)
    assert report["ok"] is False and "stem.0.weight" in report["nonfinite"] and report["missing"] == []


@pytest.mark.parametrize("device,words", [("foo", "is not a device"), ("meta", "not 'meta'"),
                                          ("cuda:7", "CUDA"), ("xla", "not 'xla'")])
def test_bad_device_is_refused_before_the_checkpoint_loads(bad_checkpoints, tmp_path, capsys, device, words):
    code, out, err = run_cli(["eval", "-c", str(bad_checkpoints / "random_0x80.pth"), "-t", "synth_motion",
                              "--device", device, "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and words in err and "checkpoint" not in err.split("\n")[0].replace("--device", "")
    _no_traceback(out, err)
    assert not (tmp_path / "out").exists()


def test_bad_video_backend_is_refused_up_front(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SEVERE_VIDEO_BACKEND", "ffmpeg-please")
    code, out, err = run_cli(["eval", "-c", "scratch", "-t", "synth_motion", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "unknown video backend 'ffmpeg-please'" in err
    _no_traceback(out, err)
    assert not (tmp_path / "o").exists()


def test_cka_feature_files(tmp_path, capsys):
    import numpy as np

    good = tmp_path / "b.npy"
    np.save(good, np.random.default_rng(0).normal(size=(8, 3)))
    np.savez(tmp_path / "a.npz", x=np.zeros((8, 3)))
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "cut.npy").write_bytes(good.read_bytes()[:20])
    for name, words in (("a.npz", "an .npz archive"), ("empty.npy", "the file is empty"), ("cut.npy", "not a .npy")):
        code, out, err = run_cli(["cka", "--features", str(tmp_path / name), str(good)], capsys)
        assert code == 2 and words in err and str(tmp_path / name) in err, err
        assert "aborted" not in err
        _no_traceback(out, err)


# --- run lock, output folders --------------------------------------------------------------------------

def test_second_run_into_the_same_folder_stops_at_once(tiny_suite, tmp_path, capsys):
    import subprocess
    import sys

    work = tmp_path / "out" / "synth_motion" / "seed0"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from severe_bench.engine.lock import run_lock\n"
                               "with run_lock(sys.argv[1], 'test'):\n    print('held', flush=True); time.sleep(60)",
         str(work)], stdout=subprocess.PIPE, text=True, env={**__import__("os").environ,
                                                             "PYTHONPATH": str(Path(__file__).parents[1])})
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out, err = _eval_cli(capsys, "-c", "scratch", "-t", "synth_motion", "--data-root", str(tiny_suite),
                                   "--out", str(tmp_path / "out"))
        assert code == 3 and f"process {holder.pid}" in err and "already running" in err
        _no_traceback(out, err)
        assert sorted(p.name for p in work.iterdir()) == ["run.lock"]  # nothing else written
    finally:
        holder.kill()
        holder.wait()


def test_out_under_a_file_or_unwritable(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("I am a file")
    res = tmp_path / "res"
    write_result(res, "ssv2", "Net", 60.0)
    cases = {
        "eval": ["eval", "-c", "scratch", "-t", "synth_motion", "--out", str(blocker / "sub")],
        "eval-file": ["eval", "-c", "scratch", "-t", "synth_motion", "--out", str(blocker)],
        "table": ["table", str(res), "--out", str(blocker / "t.md")],
        "plot": ["plot", str(res), "--kind", "factor-bars", "--out", str(blocker / "figs")],
        "synth": ["synth", "--scale", "tiny", "--out", str(blocker / "suite")],
    }
    for name, args in cases.items():
        code, out, err = run_cli(args, capsys)
        assert code == 2 and str(blocker) in err and ("is a file" in err or "not a folder" in err), (name, err)
        _no_traceback(out, err)
    assert blocker.read_text() == "I am a file"
    import os

    if os.geteuid() == 0:
        return  # root ignores permissions: the read-only case cannot be shown here
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        for args in (["table", str(res), "--out", str(ro / "t.md")],
                     ["eval", "-c", "scratch", "-t", "synth_motion", "--out", str(ro / "o")]):
            code, out, err = run_cli(args, capsys)
            assert code == 2 and "permission denied" in err and str(ro) in err, err
            _no_traceback(out, err)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


# --- a full disk: no temporary left behind, no C++ message ---------------------------------------------

_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]), int(sys.argv[1])))
"""


def _run_limited(limit: int, code: str, *args) -> "subprocess.CompletedProcess":
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", _LIMITED + code, str(limit), *args], capture_output=True,
                          text=True, env=env, timeout=120)


def test_full_disk_leaves_nothing_half_written(tmp_path):
    res = tmp_path / "res"
    write_result(res, "ssv2", "Net", 60.0)
    out = tmp_path / "tables"
    out.mkdir()
    (out / "t.md").write_text("the previous table\n")
    p = _run_limited(200, "from severe_bench.cli import main; main(sys.argv[2:])", "table", str(res), "--out",
                     str(out / "t.md"))
    assert p.returncode == 2 and "cannot write" in p.stderr and str(out / "t.md") in p.stderr, p.stderr
    _no_traceback(p.stdout, p.stderr)
    assert sorted(x.name for x in out.iterdir()) == ["t.md"] and (out / "t.md").read_text() == "the previous table\n"
    # a training state (torch's C++ writer) under the same limit: an OutputError, the old state kept
    work = tmp_path / "work"
    work.mkdir()
    (work / "state.pt").write_bytes(b"previous state")
    p = _run_limited(1 << 20, "import torch\nfrom severe_bench.cli import main\nfrom severe_bench.engine.state import "
                              "save_state\nm = torch.nn.Linear(1000, 1000)\n"
                              "try:\n    save_state(__import__('pathlib').Path(sys.argv[2]), m, "
                              "torch.optim.SGD(m.parameters(), lr=0.1), 1, {})\n"
                              "except Exception as exc:\n    print(type(exc).__name__, exc, file=sys.stderr)",
                     str(work / "state.pt"))
    assert "OutputError" in p.stderr and str(work / "state.pt") in p.stderr and "enforce fail" not in p.stderr, \
        p.stderr
    assert sorted(x.name for x in work.iterdir()) == ["state.pt"]
    assert (work / "state.pt").read_bytes() == b"previous state"


# --- downloads ------------------------------------------------------------------------------------------

@pytest.fixture
def http(monkeypatch, tmp_path):
    from test_fetch import Server

    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEVERE_OFFLINE", raising=False)
    s = Server()
    yield s
    s.close()


def _small_checkpoint_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    torch.save({"w": torch.arange(10.0)}, buf)
    return buf.getvalue()


def test_bad_cached_download_is_fetched_again_once(http, capfd):
    from severe_bench.checkpoints.fetch import checkpoints_dir, url_cache_path
    from severe_bench.checkpoints.loader import resolve
    from severe_bench.checkpoints.registry import load_registry
    from severe_bench.errors import CheckpointError

    blob = _small_checkpoint_bytes()
    http.files["/ckpt.pth"] = blob
    url = http.url + "/ckpt.pth"
    registry = load_registry()
    path, _, _ = resolve(url, registry)
    assert path == url_cache_path(url) and path.read_bytes() == blob
    path.write_bytes(blob[: len(blob) // 2])  # a cached copy that is not a whole checkpoint
    again, _, _ = resolve(url, registry)
    err = capfd.readouterr().err
    assert again.read_bytes() == blob and "discarding it and downloading again" in err
    assert str(checkpoints_dir()) in err  # says where the cache is
    assert [p for p, _, _ in http.log].count("/ckpt.pth") == 2
    resolve(url, registry)  # a good copy is used as it is
    assert [p for p, _, _ in http.log].count("/ckpt.pth") == 2
    resolve(url, registry, refresh=True)  # --refresh: fetched again
    assert [p for p, _, _ in http.log].count("/ckpt.pth") == 3
    # the server keeps sending a bad file (no size to check): discarded and fetched once more, then a clear
    # error, nothing kept
    http.files["/ckpt.pth"] = b"\x80garbage" * 100
    http.no_length.add("/ckpt.pth")
    url_cache_path(url).write_bytes(b"\x80garbage" * 100)
    with pytest.raises(CheckpointError, match="not usable"):
        resolve(url, registry)
    assert not url_cache_path(url).exists()
    assert not list(url_cache_path(url).parent.glob("*.part"))


def test_reply_cut_short_without_content_length_is_not_kept(http):
    from severe_bench.checkpoints.fetch import url_cache_path
    from severe_bench.checkpoints.loader import resolve
    from severe_bench.checkpoints.registry import load_registry
    from severe_bench.errors import CheckpointError

    blob = _small_checkpoint_bytes()
    http.files["/cut.pth"] = blob
    http.no_length.add("/cut.pth")
    http.truncate["/cut.pth"] = len(blob) // 2
    url = http.url + "/cut.pth"
    with pytest.raises(CheckpointError, match="no Content-Length"):
        resolve(url, load_registry())
    assert not url_cache_path(url).exists() and not list(url_cache_path(url).parent.glob("*"))
    path, _, _ = resolve(url, load_registry())  # the next, complete reply is taken
    assert path.read_bytes() == blob


# --- annotations: duplicates, empty splits, truncated videos ------------------------------------------

def _copy_motion(tiny_suite, tmp_path) -> Path:
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_suite / "synth_motion", root / "synth_motion")
    return root


def test_duplicate_lines_are_removed_with_a_warning(tiny_suite, tmp_path, capsys):
    from severe_bench.registry import get_task, read_split

    root = _copy_motion(tiny_suite, tmp_path)
    listing = root / "synth_motion" / "ucfTrainTestlist" / "testlist01.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(lines + lines[:2]) + "\n")
    samples = read_split(get_task("synth_motion"), root / "synth_motion", "test")
    assert len(samples) == len(lines) and len({s.video for s in samples}) == len(lines)
    err = capsys.readouterr().err
    assert "2 duplicate test entries removed" in err and str(listing) in err
    code, out, err = run_cli(["data", "check", "synth_motion", "--root", str(root), "--json"], capsys)
    report = json.loads(out)
    assert len(report["splits"]["test"]["duplicates"]) == 2 and report["splits"]["test"]["samples"] == len(lines)


def test_empty_split_fails_before_training(tiny_suite, tmp_path, capsys):
    root = _copy_motion(tiny_suite, tmp_path)
    listing = root / "synth_motion" / "ucfTrainTestlist" / "testlist01.txt"
    listing.write_text("\n")
    code, out, err = run_cli(["data", "check", "synth_motion", "--root", str(root)], capsys)
    assert code == 1 and "has no samples" in out
    code, out, err = _eval_cli(capsys, "-c", "scratch", "-t", "synth_motion", "--data-root", str(root),
                               "--out", str(tmp_path / "out"))
    assert code == 2 and "test list of task synth_motion has no samples" in err and str(listing) in err
    assert "pass 1" not in out  # nothing trained
    _no_traceback(out, err)


def test_truncated_video_partial_load_and_resumed_wall_time(tiny_suite, tmp_path, capsys, monkeypatch):
    """One real smoke run: a test video cut short is reported by `data check --decode` and counted in the
    result; a wrong-shaped tensor under --allow-partial is warned about and recorded as missing; after a
    kill and resume wall_time_s covers both parts."""
    from severe_bench.engine import trainer
    from severe_bench.models import create_backbone

    root = _copy_motion(tiny_suite, tmp_path)
    victim = (root / "synth_motion" / "ucfTrainTestlist" / "testlist01.txt").read_text().split()[0]
    video = root / "synth_motion" / "UCF-101" / victim
    data = video.read_bytes()
    video.write_bytes(data[: int(len(data) * 0.75)])  # the header still claims every frame
    code, out, _ = run_cli(["data", "check", "synth_motion", "--root", str(root), "--decode"], capsys)
    assert code == 1 and "truncated videos: 1" in out and victim in out and "frames its container declares" in out

    state = create_backbone("r2plus1d_18").state_dict()
    state["stem.0.weight"] = torch.zeros(45, 3, 1, 5, 5)  # the backbone wants (45, 3, 1, 7, 7)
    ckpt = tmp_path / "wrong_shape.pth"
    torch.save(state, ckpt)
    args = ("-c", str(ckpt), "--allow-partial", "-t", "synth_motion", "--data-root", str(root),
            "--out", str(tmp_path / "out"))
    real_save = trainer.save_state

    def save_then_die(*a, **kw):
        real_save(*a, **kw)
        raise KeyboardInterrupt  # killed right after the first pass was saved

    monkeypatch.setattr(trainer, "save_state", save_then_die)
    code, out, err = _eval_cli(capsys, *args)
    assert code == 130
    assert "WARNING: partial load" in out and "1 of them in the file with the wrong shape" in out
    assert "stem.0.weight" in out
    work = tmp_path / "out" / "synth_motion" / "seed0"
    first_part = json.loads((work / "timing.json").read_text())["wall_time_s"]
    assert first_part > 0
    monkeypatch.setattr(trainer, "save_state", real_save)
    code, out, err = _eval_cli(capsys, *args)
    assert code == 0, err
    assert "resuming from pass 1/2" in out
    res = json.loads((work / "result.json").read_text())
    assert validate_result(res) == []
    assert "stem.0.weight" in res["model"]["missing_keys"] and res["model"]["shape_mismatch"]
    assert res["data"]["truncated_videos"] == {"count": 1, "paths": [f"UCF-101/{victim}"]}
    assert res["wall_time_s"] > first_part
    first, second = res["engine"]["invocations"]
    assert (first["start_pass"], second["start_pass"]) == (0, 1)
    assert first["seconds"] == first_part and res["wall_time_s"] == round(first_part + second["seconds"], 2)
    assert not (work / "timing.json").exists() and not (work / "state.pt").exists()
    code, out, err = run_cli(["table", str(tmp_path / "out"), "--format", "csv"], capsys)
    assert code == 0 and "synth_motion=1" in out  # the table shows the truncated count


_KILLED_EVAL = """
import os, signal, sys
from severe_bench.cli import main
from severe_bench.engine import trainer

real_start = trainer.Progress.start_pass

def start_pass(self, p, n):
    if p == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # no handler, no finally: as a lost machine or an OOM kill
    return real_start(self, p, n)

trainer.Progress.start_pass = start_pass
main(sys.argv[1:])
"""


def test_a_run_killed_outright_keeps_the_wall_time_of_its_saved_passes(tiny_suite, tmp_path, capsys):
    """SIGKILL after pass 1 was saved: the resumed result's wall time still counts the first invocation,
    and the result lists both invocations with the pass each started from."""
    import subprocess
    import sys

    args = ["eval", "--profile", "smoke", "--workers", "0", "-c", "scratch", "-t", "synth_motion",
            "--data-root", str(tiny_suite), "--out", str(tmp_path / "out")]
    script = tmp_path / "killed_eval.py"
    script.write_text(_KILLED_EVAL)
    p = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=600)
    assert p.returncode == -9, p.stderr[-2000:]
    work = tmp_path / "out" / "synth_motion" / "seed0"
    killed = json.loads((work / "timing.json").read_text())
    assert killed["wall_time_s"] > 0 and [i["start_pass"] for i in killed["invocations"]] == [0]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "resuming from pass 1/2" in out
    res = json.loads((work / "result.json").read_text())
    assert validate_result(res) == []
    first, second = res["engine"]["invocations"]
    assert first == killed["invocations"][0] and second["start_pass"] == 1 and second["device"] == "cpu"
    assert res["wall_time_s"] == round(killed["wall_time_s"] + second["seconds"], 2) > killed["wall_time_s"]


# --- every command, bad paths and bad files: a message, never a traceback -----------------------------

def test_cli_walk_with_bad_paths_and_files(tmp_path, bad_checkpoints, capsys):
    """Each command with missing paths, folders for files, files for folders and damaged files: non-zero exit,
    a message on standard error, and no Python traceback anywhere."""
    import traceback

    from severe_bench.cli import COMMANDS

    nowhere = tmp_path / "nowhere"
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("just text\n")
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe{not json")
    rnd = bad_checkpoints / "random_0x80.pth"
    cut = bad_checkpoints / "truncated_zip.pth"
    cases = [
        ["tasks", "show", "no_such_task"],
        ["data", "list", "no_such_task"],
        ["data", "check", "ucf101", "--root", str(nowhere)],
        ["data", "check", "ucf101", "--root", str(a_file)],
        ["data", "list", "synth_motion", "--root", str(tmp_path)],
        ["eval", "-c", str(nowhere / "x.pth"), "-t", "synth_motion", "--out", str(tmp_path / "o1")],
        ["eval", "-c", str(tmp_path), "-t", "synth_motion", "--out", str(tmp_path / "o2")],
        ["eval", "-c", str(rnd), "-t", "synth_motion", "--out", str(tmp_path / "o3")],
        ["eval", "-c", str(cut), "--trust-checkpoint", "-t", "synth_motion", "--out", str(tmp_path / "o4")],
        ["eval", "-c", "scratch", "-t", "synth_motion", "--data-root", str(nowhere), "--out", str(tmp_path / "o5")],
        ["eval", "-c", "scratch", "-t", "synth_motion", "--profile", "nope", "--out", str(tmp_path / "o6")],
        ["eval", "-c", "scratch", "-t", "no_such_task", "--out", str(tmp_path / "o7")],
        ["eval", "-c", "scratch", "-t", "synth_motion", "--out", str(a_file)],
        ["checkpoints", "verify", str(nowhere / "x.pth")],
        ["checkpoints", "verify", str(tmp_path)],
        ["checkpoints", "verify", str(a_file)],
        ["checkpoints", "verify", str(cut), "--trust-checkpoint"],
        ["checkpoints", "show", "no_such_checkpoint"],
        ["checkpoints", "fetch", "no_such_checkpoint"],
        ["table", str(nowhere)],
        ["table", str(garbage)],
        ["table", str(a_file)],
        ["table", "--with-reference", "--out", str(a_file / "t.md")],
        ["plot", str(garbage), "--kind", "summary", "--out", str(tmp_path / "p")],
        ["plot", "--with-reference", "--kind", "factor-bars", "--out", str(a_file)],
        ["plot", "--with-reference", "--kind", "factor-bars", "--out", str(a_file / "p")],
        ["synth", "--scale", "tiny", "--out", str(a_file / "s")],
        ["cka", "--features", str(garbage), str(a_file)],
        ["cka", "--features", str(nowhere), str(a_file)],
        ["cka", "--task", "synth_motion", "--checkpoint", str(rnd), "--checkpoint", "scratch",
         "--out", str(tmp_path / "c")],
        ["bias", "--task", "synth_motion", "--representation", str(rnd), "--out", str(tmp_path / "b")],
    ]
    assert {c[0] for c in cases} >= set(COMMANDS) - {"submit", "leaderboard"}  # every command is walked
    failures = []
    for args in cases:
        try:
            code, out, err = run_cli(args, capsys)
        except Exception:  # an exception that escaped main(): the user would see a traceback
            failures.append(f"{args}: {traceback.format_exc()}")
            continue
        if code in (0, None) or "Traceback" in out + err or not err.strip():
            failures.append(f"{args}: exit {code}, stderr {err[-500:]!r}")
    assert not failures, "\n".join(failures)
