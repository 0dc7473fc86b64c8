"""GPU benchmark: fine-tune step throughput and peak memory at the protocol inputs.

Measures, for each backbone at its full-protocol input (R(2+1)D-18: batch 32 x 32 x 112^2; ViT-B: batch 8 x 16 x
224^2), the time of a forward+backward+Adam step (median of N after warm-up) and the peak CUDA memory; and the
test-time forward throughput (clips/s). Run on the GPU machine:

    python bench/train_step.py --out bench/results_train_step.json

and copy the figures into bench/RESULTS.md with the device, date and command.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from severe_bench.engine.model import VideoClassifier
from severe_bench.models import create_backbone

CONFIGS = {
    "r2plus1d_18": {"batch": 32, "shape": (3, 32, 112, 112)},
    "vit_b_16": {"batch": 8, "shape": (3, 16, 224, 224)},
}


def bench(arch: str, batch: int, shape, steps: int, amp: bool) -> dict:
    dev = torch.device("cuda")
    model = VideoClassifier(create_backbone(arch), 101).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.randn(batch, *shape, device=dev)
    y = torch.randint(0, 101, (batch,), device=dev)
    torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(steps + 3):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        torch.cuda.synchronize()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2**30
    model.eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            model(x)
        torch.cuda.synchronize()
    infer = batch * steps / (time.perf_counter() - t0)
    step = statistics.median(times)
    return {"arch": arch, "batch": batch, "input": list(shape), "amp_bf16": amp, "train_step_s": round(step, 4),
            "train_clips_per_s": round(batch / step, 1), "peak_mem_gib": round(peak, 2),
            "test_clips_per_s": round(infer, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("this benchmark needs a CUDA GPU")
    rows = []
    for arch, cfg in CONFIGS.items():
        for amp in (False, True):
            rows.append(bench(arch, cfg["batch"], cfg["shape"], args.steps, amp))
            print(json.dumps(rows[-1]))
    result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "rows": rows}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
