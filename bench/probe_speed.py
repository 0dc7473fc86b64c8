"""Online linear probe vs cached-feature probe (``linear_cached``) for the same schedule: wall time of each.

Runs both protocols from the same scratch backbone on the built-in synth_motion videos (generated here), with
the linear protocol's schedule (passes x clips per video) at a small input, and prints: the online probe's
time, the cached probe's first run (feature extraction + head training) and a rerun that reuses the stored
features, and their ratios.

    python bench/probe_speed.py [--passes 10 --clips 10 --views 4 --frames 8 --crop 32]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from severe_bench import registry  # noqa: E402
from severe_bench.checkpoints import load_checkpoint  # noqa: E402
from severe_bench.engine.context import RunContext  # noqa: E402
from severe_bench.synth import generate_suite  # noqa: E402


def _ctx(task_id, root, work, overrides, state, workers):
    task = registry.get_task(task_id, profile="full", overrides=overrides)
    ck = load_checkpoint("scratch", count_flops=False)
    ck.backbone.load_state_dict(state)
    return RunContext(task=task, root=root, train_samples=registry.read_split(task, root, "train"),
                      test_samples=registry.read_split(task, root, "test"), num_classes=6, checkpoint=ck,
                      normalisation=task.protocol["normalisation"], seed=0, device=torch.device("cpu"),
                      work_dir=work, workers=workers, log=lambda m: None)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--passes", type=int, default=10)
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--views", type=int, default=4)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--workers", type=int, default=0)
    args = ap.parse_args(argv)
    from severe_bench.engine import cached_probe, finetune

    tmp = Path(tempfile.mkdtemp(prefix="probe_speed_"))
    try:
        generate_suite(tmp / "synth", seed=0, scale="tiny")
        root = tmp / "synth" / "synth_motion"
        proto = {"input": {"frames": args.frames, "fps": 16, "crop": args.crop}, "batch_size": 16,
                 "schedule": {"passes": args.passes, "clips_per_video": args.clips, "milestones": [args.passes // 2]},
                 "test": {"clips": 2, "frames": args.frames, "fps": 16, "resize": args.crop + 4, "crop": args.crop}}
        torch.manual_seed(0)
        state = load_checkpoint("scratch", count_flops=False).backbone.state_dict()
        times = {}
        work = tmp / "online"
        work.mkdir()
        t0 = time.perf_counter()
        on = finetune.run(_ctx("synth_motion_linear", root, work, {"protocol": proto}, state, args.workers))
        times["online"] = time.perf_counter() - t0
        work = tmp / "cached"
        work.mkdir()
        cached = {"protocol": {**proto, "cached": {"train_views_per_video": args.views}}}
        t0 = time.perf_counter()
        ca = cached_probe.run(_ctx("synth_motion_linear_cached", root, work, cached, state, args.workers))
        times["cached_first_run"] = time.perf_counter() - t0
        (work / "state.pt").unlink()
        t0 = time.perf_counter()
        cached_probe.run(_ctx("synth_motion_linear_cached", root, work, cached, state, args.workers))
        times["cached_rerun"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"schedule {args.passes} passes x {args.clips} clips/video, {args.views} cached views/video, "
          f"{args.frames}x{args.crop}^2, {args.workers} workers, CPU threads {torch.get_num_threads()}")
    for k, v in times.items():
        print(f"  {k:18s} {v:8.2f} s  (online / this: {times['online'] / v:.1f}x)")
    print(f"  top1 online {on.metrics['top1']:.2f}, cached {ca.metrics['top1']:.2f}")
    return times


if __name__ == "__main__":
    main()
