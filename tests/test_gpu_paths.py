"""The engine's CUDA code paths, run for real on a CPU-only machine through the simulated device
(tests/simcuda.py): bf16 autocast, channels_last_3d, pinned loaders with workers, device generators, the
test path, precise BatchNorm, the cached probe, counting, the loop's CUDA-only non-finite check, and a bench
script that bench/gpu_check.sh runs on a lent GPU. A tensor left on the CPU, a CPU generator drawing for the
device or a ``.numpy()`` of a device tensor fails these tests as it would fail on a GPU; on the CPU device every
such bug is invisible."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simcuda import SIM_DEVICE_NAME

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SIMCUDA = ROOT / "tests" / "simcuda.py"
TINY = {"input": {"frames": 4, "crop": 32}, "batch_size": 4, "schedule": {"passes": 1},
        "test": {"clips": 1, "frames": 4, "resize": 36, "crop": 32}}


@pytest.fixture(scope="module")
def tiny_registry(tmp_path_factory):
    """The project's task registry plus a ``tiny`` profile: the smoke profile's values at 4 frames of 32^2, one
    pass, one test clip (every device path of ``smoke`` still runs: precise BatchNorm, warm-up-free ViT
    schedule, counting's tracking and test-time merge), so the suite's time budget holds."""
    import shutil

    import yaml

    from severe_bench.registry import deep_merge
    from severe_bench.resources import resource_path

    tasks = tmp_path_factory.mktemp("gpu_paths") / "tasks"
    shutil.copytree(resource_path("tasks"), tasks)
    smoke = yaml.safe_load((tasks / "_profile_smoke.yaml").read_text())
    extra = {"finetune_multilabel": {"train_augment": {"short_side_scale": [36, 45]}, "precise_bn_batches": 1},
             "finetune_vit": {"schedule": {"warmup_passes": 0}, "test": {"resize": 32}},
             "counting": {"segments_per_video": 1}}
    tiny = {"max_videos": {"train": 8, "test": 4}, "by_protocol": {}}
    for name, values in smoke["by_protocol"].items():
        merged = deep_merge(deep_merge(values, TINY), extra.get(name, {}))
        if name == "counting":
            merged["test"] = values["test"]  # counting's test is its merge schedule, not clips
        tiny["by_protocol"][name] = merged
    (tasks / "_profile_tiny.yaml").write_text(yaml.safe_dump(tiny, sort_keys=False))
    return tasks


def _run(args: list[str], registry: Path | None = None, timeout: float = 600) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    if registry is not None:
        env["SEVERE_TASKS_DIR"] = str(registry)
    p = subprocess.run([sys.executable, str(SIMCUDA), *args], env=env, capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    return p.stdout


def _results(out: Path) -> dict:
    return {p.parts[-3]: json.loads(p.read_text()) for p in sorted(out.glob("*/seed0/result.json"))}


def _assert_ran_on_the_device(result: dict, cnn: bool) -> None:
    engine, device = result["engine"], result["device"]
    assert device["type"] == "cuda" and device["name"] == SIM_DEVICE_NAME and device["gpu_count"] == 1
    assert engine["precision"] == "bf16" and engine["tf32"] and engine["cudnn_benchmark"]
    assert engine["channels_last_3d"] is cnn  # the 3-D layout is the CNN's only
    assert all(h["loss"] == h["loss"] for h in engine["history"])  # finite history, no NaN
    assert result["data"]["num_test_scored"] == result["data"]["num_test"] > 0


def test_cnn_protocols_run_on_a_cuda_device_with_loader_workers(tiny_suite, tiny_registry, tmp_path):
    """Fine-tune (colour jitter on the device, precise BatchNorm: multi-label), the cached linear probe and
    counting, with 2 decoding workers feeding a pinned loader, as a GPU run does."""
    out = tmp_path / "cnn"
    tasks = ["synth_motion", "synth_multilabel", "synth_motion_linear_cached", "synth_count"]
    log = _run(["severe", "eval", "-c", "scratch", *[a for t in tasks for a in ("-t", t)], "--profile", "tiny",
                "--device", "cuda", "--workers", "2", "--data-root", str(tiny_suite), "--out", str(out)],
               tiny_registry)
    results = _results(out)
    assert sorted(results) == sorted(tasks), log[-2000:]
    for task, result in results.items():
        _assert_ran_on_the_device(result, cnn=True)
        assert result["engine"]["workers"] == 2
    assert "precise BatchNorm statistics" in (out / "synth_multilabel" / "seed0" / "run.log").read_text()
    assert results["synth_count"]["metrics"]["counting_error"] >= 0


def test_vit_recipe_runs_on_a_cuda_device(tiny_suite, tiny_registry, tmp_path):
    """RandAugment and pixel-noise erasing on the device (the noise from a device generator), mixup/cutmix with
    soft targets on the device, AdamW with layer decay."""
    out = tmp_path / "vit"
    _run(["severe", "eval", "-c", "scratch", "--arch", "vit_s_16", "-t", "synth_motion", "--profile", "tiny",
          "--device", "cuda", "--workers", "0", "--data-root", str(tiny_suite), "--out", str(out)], tiny_registry)
    (result,) = _results(out).values()
    _assert_ran_on_the_device(result, cnn=False)


def test_augmentation_benchmark_runs_on_a_cuda_device():
    """bench/augment_compare.py, a stage of bench/gpu_check.sh, on the device: the batched ops agree with the
    per-clip torchvision ones there too (the timings of a simulated device mean nothing and are not kept)."""
    log = _run(["--script", "bench/augment_compare.py", "--device", "cuda", "--reps", "1"])
    assert "colour jitter of 8 x 8 x 3 x 64^2 on cuda" in log and "uint8 on cuda" in log
    jitter_diff = float(log.split("own vs torchvision_loop max |diff| ")[1].split()[0])
    assert jitter_diff < 1e-5
    assert "own vs torchvision_loop max |diff| 0 (uint8 levels)" in log


def test_a_non_finite_loss_on_cuda_stops_the_run_at_the_end_of_its_pass(tmp_path):
    """On CUDA the non-finite flag stays on the device and is read every FINITE_CHECK_EVERY steps and at the end
    of a pass (no host sync per step): a NaN at step 2 lets the pass finish, then stops the run, no state saved."""
    from types import SimpleNamespace

    import torch

    from severe_bench.engine.trainer import Precision, fit, optimise
    from severe_bench.errors import SevereError
    from simcuda import simulated_cuda
    from test_trainer import _OnesItems, _stack  # the CPU twin of this test: test_trainer.py

    calls = []
    with simulated_cuda():
        device = torch.device("cuda")
        model = torch.nn.Linear(3, 1).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

        def step(batch, p, s):
            calls.append((p, s))
            loss = model(batch["x"].to(device, non_blocking=True)).sum() * (float("nan") if s == 1 else 1.0)
            optimise(optimizer, loss)
            return loss, 1

        ctx = SimpleNamespace(work_dir=tmp_path, seed=0, workers=0, device=device, log=lambda m: None,
                              task=SimpleNamespace(id="t"))
        with pytest.raises(SevereError, match="non-finite in pass 1; the run is stopped"):
            fit(ctx=ctx, model=model, optimizer=optimizer, dataset=_OnesItems(), batch_size=2, passes=2,
                train_batch=step, collate=_stack, precision=Precision(device))
    assert calls == [(0, 0), (0, 1), (0, 2), (0, 3)] and not (tmp_path / "state.pt").exists()
