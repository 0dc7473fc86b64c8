"""Which library runs the batched training augmentation on the device: a measured comparison.

**Colour jitter** (CNN track). Times one batch of colour jitter (brightness, contrast, saturation 0.4, hue 0.2,
per-sample parameters, the same for every frame of a clip) three ways on the same device and input:

* ``own``: ``severe_bench.engine.device_augment.color_jitter`` (torchvision's kernel arithmetic, batched);
* ``torchvision_loop``: ``v2.ColorJitter.transform`` called per sample with that sample's parameters;
* ``kornia``: ``kornia.augmentation.VideoSequential(ColorJitter(...), same_on_frame=True)`` (draws its own
  parameters; its hue/contrast arithmetic differs from torchvision's, so it would not be the same
  distribution even at equal speed).

**RandAugment** (ViT track, rand-m7-n4-mstd0.5, per-clip draws, the same ops for every frame of a clip), on
uint8 clips, three ways:

* ``own``: ``severe_bench.engine.device_randaugment.rand_augment`` (torchvision's op arithmetic, batched, the
  worker-drawn parameters);
* ``torchvision_loop``: the per-clip ``RandAugmentTimm`` (torchvision v2 ops) called clip by clip — what the
  workers did before;
* ``kornia``: ``kornia.augmentation.auto.RandAugment`` on the batch's frames as images (its own op set, policy
  and draws, one per frame: ``VideoSequential(same_on_frame=True)`` rejects it; timed for speed only).

* ``timm_pil_loop``: timm's ``rand-m7-n4-mstd0.5-inc1`` (what VideoMAE copies), on PIL frames one at a time on
  the CPU (``random`` reseeded per clip so a clip's frames share their ops): no device path exists for it.

    python bench/augment_compare.py                 # CPU, small batch
    python bench/augment_compare.py --full          # R(2+1)D-18 training batch: 32 x 32 x 112^2 (GPU)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from severe_bench.engine.device_augment import color_jitter  # noqa: E402
from severe_bench.engine.device_randaugment import rand_augment  # noqa: E402
from severe_bench.engine.transforms import RandAugmentTimm  # noqa: E402


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
    ra_results = compare_randaugment(device, args.reps, (16, 16, 224) if args.full else (8, 8, 64))
    return {"color_jitter": results, "randaugment": ra_results}


def compare_randaugment(device, reps: int, size) -> dict:
    b, t, s = size
    fill = [124, 116, 104]
    ra = RandAugmentTimm(4, 7, 0.5, fill=fill)
    torch.manual_seed(0)
    x = torch.randint(0, 256, (b, t, 3, s, s), dtype=torch.uint8, device=device)
    seeds = list(range(b))

    def draws():
        out = []
        for i in seeds:
            torch.manual_seed(i)
            out.append(ra.draw(s, s))
        return torch.stack([o for o, _ in out]), torch.stack([m for _, m in out])

    ops, mags = draws()

    def own():
        return rand_augment(x, ops, mags, fill)

    def tv_loop():
        out = []
        for i in seeds:
            torch.manual_seed(i)
            out.append(ra(tv_tensors.Video(x[i])).as_subclass(torch.Tensor))
        return torch.stack(out)

    results = {"own": _time(own, device, reps), "torchvision_loop": _time(tv_loop, device, reps)}
    try:  # timm's RandAugment: PIL images on the CPU, one frame at a time; `random` reseeded per clip so
        # that every frame of a clip gets the same ops (as VideoMAE's clip-level copy of it does)
        import random

        from PIL import Image
        from timm.data.auto_augment import rand_augment_transform

        timm_ra = rand_augment_transform("rand-m7-n4-mstd0.5-inc1", {"img_mean": tuple(fill)})
        pil = [[Image.fromarray(f.permute(1, 2, 0).cpu().numpy()) for f in clip] for clip in x]

        def timm_loop():
            out = []
            for i, clip in enumerate(pil):
                frames = []
                for f in clip:
                    random.seed(i)
                    frames.append(torch.from_numpy(np.array(timm_ra(f))).permute(2, 0, 1))
                out.append(torch.stack(frames))
            return torch.stack(out).to(device)

        results["timm_pil_loop"] = _time(timm_loop, device, reps)
    except Exception as exc:
        results["timm_pil_loop"] = f"not measured ({type(exc).__name__}: {exc})"
    try:
        import kornia.augmentation as K
        from kornia.augmentation.auto import RandAugment

        # kornia cannot keep one draw for all frames of a clip (VideoSequential's same_on_frame rejects its
        # RandAugment), so the frames go as images with their own draws: a speed figure only
        kra = RandAugment(n=4, m=7)
        xf = (x.float() / 255).flatten(0, 1)
        results["kornia (per frame)"] = _time(lambda: kra(xf), device, reps)
    except Exception as exc:  # kornia missing or failing on this device: say so, do not guess a figure
        results["kornia (per frame)"] = f"not measured ({type(exc).__name__}: {exc})"
    err = (own().int() - tv_loop().int()).abs().max().item()
    print(f"RandAugment m7-n4-mstd0.5 of {b} x {t} x 3 x {s}^2 uint8 on {device}: median ms per batch over {reps} reps")
    for k, v in results.items():
        print(f"  {k:18s} {v:.1f}" if isinstance(v, float) else f"  {k:18s} {v}")
    print(f"  own vs torchvision_loop max |diff| {err} (uint8 levels)")
    results["max_abs_diff"] = err
    return results


if __name__ == "__main__":
    main()
