"""Which library runs the batched training colour jitter: a measured comparison.

Times one batch of colour jitter (brightness, contrast, saturation 0.4, hue 0.2, per-sample parameters,
the same for every frame of a clip) three ways on the same device and input:

* ``own``: ``severe_bench.engine.device_augment.color_jitter`` (torchvision's kernel arithmetic, batched);
* ``torchvision_loop``: ``v2.ColorJitter.transform`` called per sample with that sample's parameters;
* ``kornia``: ``kornia.augmentation.VideoSequential(ColorJitter(...), same_on_frame=True)`` (draws its own
  parameters; its hue/contrast arithmetic differs from torchvision's, so it would not be the same
  distribution even at equal speed).

    python bench/augment_compare.py                 # CPU, small batch
    python bench/augment_compare.py --full          # R(2+1)D-18 training batch: 32 x 32 x 112^2 (GPU)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from severe_bench.engine.device_augment import color_jitter  # noqa: E402


def _params(b: int):
    jit = v2.ColorJitter(0.4, 0.4, 0.4, 0.2)
    ps = [jit.make_params([]) for _ in range(b)]
    order = torch.stack([p["fn_idx"] for p in ps])
    factors = torch.tensor([[p["brightness_factor"], p["contrast_factor"], p["saturation_factor"], p["hue_factor"]]
                            for p in ps], dtype=torch.float32)
    return jit, ps, order, factors


def _time(fn, device, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    b, t, s = (32, 32, 112) if args.full else (8, 8, 64)
    torch.manual_seed(0)
    x = torch.rand(b, t, 3, s, s, device=device)
    jit, ps, order, factors = _params(b)

    def own():
        return color_jitter(x, order, factors)

    def tv_loop():
        return torch.stack([jit.transform(tv_tensors.Video(x[i]), ps[i]).as_subclass(torch.Tensor) for i in range(b)])

    results = {"own": _time(own, device, args.reps), "torchvision_loop": _time(tv_loop, device, args.reps)}
    try:
        import kornia.augmentation as K

        seq = K.VideoSequential(K.ColorJitter(0.4, 0.4, 0.4, 0.2, p=1.0), data_format="BTCHW", same_on_frame=True)
        results["kornia"] = _time(lambda: seq(x), device, args.reps)
    except Exception as exc:  # kornia missing or failing on this device: say so, do not guess a figure
        results["kornia"] = f"not measured ({type(exc).__name__}: {exc})"
    err = (own() - tv_loop()).abs().max().item()
    print(f"colour jitter of {b} x {t} x 3 x {s}^2 on {device}: median ms per batch over {args.reps} reps")
    for k, v in results.items():
        print(f"  {k:18s} {v:.1f}" if isinstance(v, float) else f"  {k:18s} {v}")
    print(f"  own vs torchvision_loop max |diff| {err:.2e}")
    return results


if __name__ == "__main__":
    main()
