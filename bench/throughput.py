"""Clip throughput of the engine, honest and in one command: the real pipeline against its ceilings.

On generated UCF101-like videos (320x240, ~7 s at 25 fps, H.264 at ~500 kbit/s) it measures, in one run:

* **raw decode**: the frames a train clip (or a test video's clips) needs, decoded and nothing else, with the
  same workers, batch and sampler as the pipeline;
* **loader** (train): the worker side alone — ``TrainClips`` + split transform (decode, crop, flip, uint8) +
  the persistent loader, batches moved to the device;
* **pipeline**: the engine's whole data path (loader + batched device augmentation for train; ``TestClips``
  with uint8 ``TestViews`` + device normalisation for test), plus the model step when ``--model``. On a CPU
  the "device" is the CPU itself, so the pipeline's augmentation competes with decoding for the same cores;
* **ceiling** (``--model``): the same step with tensors already on the device;
* **decode at training resolution**: decord resizing while it decodes, against decoding full frames, and the
  whole pipeline with frames resized while decoding (``--profile fast_decode``) against the protocol's.

It prints clips/s, the pipeline-to-raw-decode and pipeline-to-ceiling ratios, and peak GPU memory.

    python bench/throughput.py                      # CPU: small sizes, data path only
    python bench/throughput.py --full --model       # GPU host: R(2+1)D-18 32x112^2 b32, ViT-B 16x224^2

``--json`` writes the figures; ``--append-results bench/RESULTS.md`` appends them with device, date and command.
NVIDIA DALI (GPU decoding) is not compared here: it is not installed in this environment (see RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from severe_bench.data.clips import TestClips, TrainClips, collate_ok, collate_views, decode_test_frames  # noqa: E402
from severe_bench.data.sample import Sample  # noqa: E402
from severe_bench.engine.device_augment import DeviceAugment  # noqa: E402
from severe_bench.engine.trainer import PassSampler, Precision, default_workers, make_loader  # noqa: E402
from severe_bench.engine.transforms import RandAugmentTimm, mean_fill  # noqa: E402
from severe_bench.video.reader import open_video  # noqa: E402
from severe_bench.video.sampling import train_clip_indices  # noqa: E402
from severe_bench.video.transforms import TestViews, split_train_transform  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

# (arch, frames, crop, test resize, batch, test clips, test crops)
FULL = {"r2plus1d_18": dict(frames=32, fps=16, crop=112, resize=128, batch=32, clips=10, crops=1),
        "vit_b_16": dict(frames=16, stride=4, crop=224, resize=224, batch=16, clips=5, crops=3)}
SMALL = {"r2plus1d_18": dict(frames=8, fps=8, crop=64, resize=72, batch=8, clips=10, crops=1),
         "vit_s_16": dict(frames=8, stride=4, crop=64, resize=64, batch=8, clips=2, crops=3)}


# --- videos ------------------------------------------------------------------------------------------------

def _make_video(path: Path, k: int, seconds: float, fps: int, size, kbit: int) -> None:
    import av

    w, h = size
    rng = np.random.default_rng(k)
    tex = rng.integers(0, 256, size=(h * 2, w * 2, 3), dtype=np.uint8)
    tex = (tex.astype(np.float32) * 0.5 + 64).astype(np.uint8)
    part = path.with_name(path.name + ".part.mp4")  # renamed when complete: an interrupted run leaves no half file
    with av.open(str(part), mode="w") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        s.width, s.height, s.pix_fmt, s.bit_rate = w, h, "yuv420p", kbit * 1000
        s.codec_context.thread_count = 1
        for t in range(int(seconds * fps)):
            dx, dy = int(t * 1.5) % w, int(t * 0.7) % h
            img = tex[dy:dy + h, dx:dx + w].copy()
            cx, cy = int(w / 2 + w / 3 * math.sin(t / 9 + k)), int(h / 2 + h / 3 * math.cos(t / 7))
            img[max(cy - 20, 0):cy + 20, max(cx - 30, 0):cx + 30] = (200, 60 + 10 * k % 190, 40)
            img = np.clip(img.astype(np.int16) + rng.integers(-6, 7, size=img.shape), 0, 255).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    part.replace(path)


def make_videos(folder: Path, n: int, seconds: float = 7.0, fps: int = 25, size=(320, 240), kbit: int = 500):
    """UCF101-like H.264 clips: a drifting textured background with moving shapes and sensor noise. Each video
    depends only on its index; missing ones are encoded in parallel, one per available core (on a GPU host, time
    spent encoding comes out of a short device loan)."""
    from concurrent.futures import ProcessPoolExecutor

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"v_{k:03d}.mp4" for k in range(n)]
    todo = [k for k, path in enumerate(paths) if not path.exists()]
    if todo:
        with ProcessPoolExecutor(max_workers=min(len(todo), len(os.sched_getaffinity(0)))) as pool:
            for f in [pool.submit(_make_video, paths[k], k, seconds, fps, size, kbit) for k in todo]:
                f.result()
    kbits = [p.stat().st_size * 8 / 1000 / seconds for p in paths]
    return paths, float(np.mean(kbits))


# --- datasets that only decode (the raw-decode baselines) ------------------------------------------------

class RawTrainDecode(torch.utils.data.Dataset):
    def __init__(self, samples, root, spec, clips_per_video=1, seed=0):
        self.samples, self.root, self.spec, self.seed = samples, Path(root), spec, seed
        self.clips_per_video = clips_per_video

    def __len__(self):
        return len(self.samples) * self.clips_per_video

    def __getitem__(self, key):
        p, i = key
        rng = np.random.default_rng([self.seed, p, i])
        with open_video(self.root / self.samples[i % len(self.samples)].video) as v:
            kw = {"stride": self.spec["stride"]} if "stride" in self.spec else {"target_fps": self.spec["fps"]}
            idx = train_clip_indices(v.num_frames, v.fps, self.spec["frames"], rng=rng, short_video="loop", **kw)
            frames = v.get_frames(idx)
            # decoding only: ship one pixel, so the baseline holds no resize, crop or inter-process copy
            return {"ok": True, "clip": torch.from_numpy(frames[:, 0, 0].copy()), "target": torch.tensor(0),
                    "video": "", "aug": {}}


class RawTestDecode(torch.utils.data.Dataset):
    def __init__(self, samples, root, spec):
        self.samples, self.root, self.spec = samples, Path(root), spec

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        kw = {"stride": self.spec["stride"]} if "stride" in self.spec else {"target_fps": self.spec["fps"]}
        frames, inverse = decode_test_frames(self.root / self.samples[i].video, self.spec["frames"], self.spec["clips"],
                                             {**kw, "short_video": "loop"})
        return {"ok": True, "clip": torch.from_numpy(frames[:, 0, 0].copy()), "target": torch.tensor(0), "video": "",
                "index": i}


def _sampling(spec, fast_decode: bool = False):
    """The clip datasets' sampling; ``fast_decode``: frames resized to the test short side while decoding (the
    ``fast_decode`` profile's ``decode_short_side``)."""
    return {"frames": spec["frames"], **({"stride": spec["stride"]} if "stride" in spec else {"fps": spec["fps"]}),
            "short_video": "loop", **({"decode_short_side": spec["resize"]} if fast_decode else {})}


# --- timing ----------------------------------------------------------------------------------------------

def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


CLOCK = time.perf_counter  # --cpu-time: time.process_time (workers 0: the CPU cost, robust on a busy host)


def timed_loop(loader, consume, device, passes: int, sampler=None, warm_batches: int = 2) -> float:
    """clips/s over ``passes`` passes of ``loader`` after ``warm_batches`` (worker start-up excluded)."""
    clips, t0, seen = 0, None, 0
    for p in range(passes):
        if sampler is not None:
            sampler.set_pass(p)
        for b in loader:
            n = consume(b)
            seen += 1
            if seen == warm_batches:
                _sync(device)
                t0 = CLOCK()
            elif seen > warm_batches:
                clips += n
    _sync(device)
    if not (t0 and clips):
        print(f"  (not timed: {seen} batches, all of them warm-up; raise --videos, --passes or --clips-per-video)",
              file=sys.stderr)
        return float("nan")
    return clips / (CLOCK() - t0)


def bench_train(arch, spec, samples, root, workers, device, model, passes, precision, clips_per_video):
    batch = spec["batch"]
    vit = arch.startswith("vit")
    fill = mean_fill({"mean": MEAN})  # RandAugment's fill, as the engine builds it
    # the ViT track's recipe: RandAugment rand-m7-n4-mstd0.5 (drawn in the workers, applied on the device), erasing
    split = split_train_transform(crop=spec["crop"], color_jitter=None if vit else (0.4, 0.4, 0.4, 0.2),
                                  randaugment=RandAugmentTimm(4, 7, 0.5, fill=fill) if vit else None,
                                  erase_p=0.25 if vit else 0.0)
    ds = TrainClips(samples, root, _sampling(spec), split, clips_per_video, 0, "single", 4)
    raw = RawTrainDecode(samples, root, spec, clips_per_video)
    out = {}
    sampler = PassSampler(len(raw), 0)
    loader = make_loader(raw, batch, sampler, collate_ok, workers, device, seed=0)
    out["raw_decode_clips_s"] = timed_loop(loader, lambda b: b["size"], device, passes, sampler)
    del loader
    aug = DeviceAugment(MEAN, STD, device=device, randaugment_fill=fill if vit else None,
                        erase_mode="pixel" if vit else "const")  # the ViT recipe's per-pixel noise, as in training
    noise = torch.Generator(device).manual_seed(0)
    step = _step(model, precision, batch) if model is not None else None

    # the data path alone: workers decode, crop and ship uint8; the batch reaches the device
    sampler = PassSampler(len(ds), 0)
    loader = make_loader(ds, batch, sampler, collate_ok, workers, device, seed=0)
    out["loader_clips_s"] = timed_loop(loader, lambda b: b["clip"].to(device, non_blocking=True).shape[0], device,
                                       passes, sampler)
    out["loader_to_raw_decode"] = out["loader_clips_s"] / out["raw_decode_clips_s"]
    del loader

    def consume(b):
        x = aug(b["clip"].to(device, non_blocking=True), b["aug"], noise)
        if step is not None:
            step(precision.input(x))
        return b["size"]

    sampler = PassSampler(len(ds), 0)
    loader = make_loader(ds, batch, sampler, collate_ok, workers, device, seed=0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    out["pipeline_clips_s"] = timed_loop(loader, consume, device, passes, sampler)
    del loader
    out["pipeline_to_raw_decode"] = out["pipeline_clips_s"] / out["raw_decode_clips_s"]
    # the same pipeline with frames resized while decoding (--profile fast_decode)
    fast = TrainClips(samples, root, _sampling(spec, fast_decode=True), split, clips_per_video, 0, "single", 4)
    sampler = PassSampler(len(fast), 0)
    loader = make_loader(fast, batch, sampler, collate_ok, workers, device, seed=0)
    out["fast_decode_pipeline_clips_s"] = timed_loop(loader, consume, device, passes, sampler)
    out["fast_decode_over_pipeline"] = out["fast_decode_pipeline_clips_s"] / out["pipeline_clips_s"]
    del loader
    if step is not None:
        x = torch.randn(batch, 3, spec["frames"], spec["crop"], spec["crop"], device=device)
        out["ceiling_clips_s"] = _ceiling(lambda: step(precision.input(x)), batch, device)
        out["pipeline_to_ceiling"] = out["pipeline_clips_s"] / out["ceiling_clips_s"]
        if device.type == "cuda":
            out["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return out


def bench_test(arch, spec, samples, root, workers, device, model, precision):
    views = spec["clips"] * spec["crops"]
    per_batch = max(1, math.ceil(spec["batch"] / views))
    out = {}
    raw = RawTestDecode(samples, root, spec)
    kw = {"num_workers": workers, "multiprocessing_context": "fork"} if workers else {}
    loader = torch.utils.data.DataLoader(raw, batch_size=per_batch, collate_fn=collate_views, **kw)
    out["raw_decode_clips_s"] = timed_loop(loader, lambda b: b["size"] * spec["clips"], device, 1, warm_batches=1)
    ds = TestClips(samples, root, _sampling(spec), spec["clips"], TestViews(spec["resize"], spec["crop"], spec["crops"]))
    loader = torch.utils.data.DataLoader(ds, batch_size=per_batch, collate_fn=collate_views,
                                         pin_memory=device.type == "cuda", **kw)
    to_input = DeviceAugment(MEAN, STD, device=device)

    @torch.no_grad()
    def consume(b):
        x = to_input(b["clip"].to(device, non_blocking=True))
        if model is not None:
            with precision.autocast():
                model(precision.input(x))
        return b["size"] * spec["clips"]

    if model is not None:
        model.eval()
    out["pipeline_clips_s"] = timed_loop(loader, consume, device, 1, warm_batches=1)
    out["pipeline_to_raw_decode"] = out["pipeline_clips_s"] / out["raw_decode_clips_s"]
    fast = TestClips(samples, root, _sampling(spec, fast_decode=True), spec["clips"],
                     TestViews(spec["resize"], spec["crop"], spec["crops"]))
    loader = torch.utils.data.DataLoader(fast, batch_size=per_batch, collate_fn=collate_views,
                                         pin_memory=device.type == "cuda", **kw)
    out["fast_decode_pipeline_clips_s"] = timed_loop(loader, consume, device, 1, warm_batches=1)
    out["fast_decode_over_pipeline"] = out["fast_decode_pipeline_clips_s"] / out["pipeline_clips_s"]
    if model is not None:
        x = torch.randn(per_batch * views, 3, spec["frames"], spec["crop"], spec["crop"], device=device)

        @torch.no_grad()
        def fwd():
            with precision.autocast():
                model(precision.input(x))

        out["ceiling_clips_s"] = _ceiling(fwd, per_batch * spec["clips"], device)
        out["pipeline_to_ceiling"] = out["pipeline_clips_s"] / out["ceiling_clips_s"]
        model.train()
    return out


def _step(model, precision, batch):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    y = torch.zeros(batch, dtype=torch.long, device=precision.device)

    def step(x):
        with precision.autocast():
            loss = torch.nn.functional.cross_entropy(model(x).float(), y[: len(x)])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _ceiling(fn, clips_per_call, device, warm=3, calls=10) -> float:
    for _ in range(warm):
        fn()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    _sync(device)
    return clips_per_call * calls / (time.perf_counter() - t0)


def bench_decode_resolution(paths, spec, short_side: int) -> dict:
    """decord full-frame decode vs decord resizing while decoding (short side ``short_side``), frames/s."""
    import decord

    out = {}
    with open_video(paths[0]) as v:
        h, w = v.height, v.width
    scale = short_side / min(h, w)
    size = (int(round(w * scale / 2)) * 2, int(round(h * scale / 2)) * 2)
    for name, kw in (("full_frames_per_s", {}), ("resized_frames_per_s", {"width": size[0], "height": size[1]})):
        frames, t0 = 0, time.perf_counter()
        for p in paths:
            vr = decord.VideoReader(str(p), num_threads=1, **kw)
            idx = list(range(0, len(vr), 2))
            frames += len(vr.get_batch(idx).asnumpy())
        out[name] = frames / (time.perf_counter() - t0)
    out["resized_to"] = f"{size[0]}x{size[1]}"
    out["resized_over_full"] = out["resized_frames_per_s"] / out["full_frames_per_s"]
    return out


def _model(arch, device, precision):
    from severe_bench.engine.model import VideoClassifier
    from severe_bench.models import create_backbone

    model = VideoClassifier(create_backbone(arch), 101)
    precision.prepare(model)
    return precision.compiled(model)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--full", action="store_true", help="the protocol sizes (default on CUDA)")
    ap.add_argument("--model", action="store_true", help="include the model step and the on-device ceiling "
                                                         "(default on CUDA)")
    ap.add_argument("--videos", type=int, default=None, help="generated videos (default 8 on CPU, 64 on CUDA)")
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--clips-per-video", type=int, default=None,
                    help="train clips per video and pass (default: enough for >= 8 batches a pass)")
    ap.add_argument("--workers", type=int, default=None, help="default: the cores available")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "severe_bench" / "bench_videos"))
    ap.add_argument("--json", default=None)
    ap.add_argument("--append-results", default=None, help="append a Markdown entry to this RESULTS.md")
    ap.add_argument("--cpu-time", action="store_true",
                    help="rates from this process's CPU time (use with --workers 0): on a shared, busy machine the "
                         "wall clock measures the other processes too")
    args = ap.parse_args(argv)
    global CLOCK
    if args.cpu_time:
        if args.workers != 0:
            ap.error("--cpu-time needs --workers 0 (worker processes' CPU time is not counted)")
        CLOCK = time.process_time

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    cuda = device.type == "cuda"
    full, with_model = args.full or cuda, args.model or cuda
    workers = default_workers() if args.workers is None else args.workers
    n = args.videos or (64 if cuda else 8)
    # one intra-op thread unless the main process decodes alone on a wall clock (CPU time would count spinning)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) if not workers and not args.cpu_time else 1))
    paths, kbit = make_videos(Path(args.cache), n)
    root = Path(args.cache)
    samples = [Sample(video=p.name, label=0, id=p.stem) for p in paths]
    configs = FULL if full else SMALL
    report = {"device": _device_name(device), "workers": workers, "videos": n, "video_kbit_s": round(kbit, 1),
              "date": time.strftime("%Y-%m-%d", time.gmtime()), "command": "python " + shlex.join(sys.argv),
              "sizes": "full" if full else "small", "clock": "cpu" if args.cpu_time else "wall", "results": {}}
    print(f"{n} videos 320x240 ~7 s H.264 (mean {kbit:.0f} kbit/s); device {report['device']}; {workers} workers")
    # a time limit (`timeout` sends SIGTERM) keeps the models already measured: they are written below
    signal.signal(signal.SIGTERM, _stop)
    try:
        for arch, spec in configs.items():
            precision = Precision(device, args.precision, args.compile, channels_last=not arch.startswith("vit"))
            model = _model(arch, device, precision) if with_model else None
            cpv = args.clips_per_video or max(1, math.ceil(8 * spec["batch"] / n))
            tr = bench_train(arch, spec, samples, root, workers, device, model, args.passes, precision, cpv)
            te = bench_test(arch, spec, samples, root, workers, device, model, precision)
            report["results"][arch] = {"spec": spec, "precision": precision.record(), "train": tr, "test": te}
            _print(arch, spec, tr, te)
            del model
            if cuda:
                torch.cuda.empty_cache()
        dec = bench_decode_resolution(paths[: min(n, 8)], configs["r2plus1d_18"], configs["r2plus1d_18"]["resize"])
        report["decode_at_training_resolution"] = dec
        print(f"decord full frames {dec['full_frames_per_s']:.0f} frames/s; resized while decoding to "
              f"{dec['resized_to']} {dec['resized_frames_per_s']:.0f} frames/s (x{dec['resized_over_full']:.2f})")
    except _Stopped as exc:
        missing = [a for a in configs if a not in report["results"]]
        missing += [] if "decode_at_training_resolution" in report else ["decode at training resolution"]
        report["stopped"] = f"stopped by {exc} before measuring: {', '.join(missing)}"
        print(report["stopped"], file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    if args.append_results:
        with open(args.append_results, "a", encoding="utf-8") as f:
            f.write(markdown(report))
    if "stopped" in report:
        sys.exit(124)  # as `timeout` reports a command it stopped
    return report


class _Stopped(BaseException):
    """Not an Exception: the decoders' broad error handling (a corrupt video is counted) must not swallow it."""


def _stop(signum, frame):
    raise _Stopped(signal.Signals(signum).name)


def _print(arch, spec, tr, te):
    def fmt(d):
        parts = [f"raw decode {d['raw_decode_clips_s']:.1f} clips/s"]
        if "loader_clips_s" in d:
            parts += [f"loader (decode+crop+uint8) {d['loader_clips_s']:.1f}",
                      f"loader/raw decode {d['loader_to_raw_decode']:.2f}"]
        parts += [f"pipeline (+ device augmentation{' + step' if 'ceiling_clips_s' in d else ''}) "
                  f"{d['pipeline_clips_s']:.1f}", f"pipeline/raw decode {d['pipeline_to_raw_decode']:.2f}"]
        if "ceiling_clips_s" in d:
            parts += [f"ceiling {d['ceiling_clips_s']:.1f}", f"pipeline/ceiling {d['pipeline_to_ceiling']:.2f}"]
        if "peak_gpu_memory_gib" in d:
            parts.append(f"peak GPU memory {d['peak_gpu_memory_gib']} GiB")
        parts.append(f"fast_decode pipeline {d['fast_decode_pipeline_clips_s']:.1f} "
                     f"(x{d['fast_decode_over_pipeline']:.2f})")
        return ", ".join(parts)
    size = f"{spec['frames']}x{spec['crop']}^2 batch {spec['batch']}"
    print(f"{arch} {size}\n  train: {fmt(tr)}\n  test ({spec['clips']} clips x {spec['crops']} crops): {fmt(te)}")


def markdown(r: dict) -> str:
    lines = [f"\n### `bench/throughput.py` — {r['device']}, {r['date']}\n",
             f"Command: `{r['command']}`; {r['videos']} generated videos (320x240, 7 s, H.264 mean "
             f"{r['video_kbit_s']} kbit/s), {r['workers']} workers, {r['sizes']} sizes, {r['clock']} clock.\n",
             "| model | input | path | raw decode clips/s | loader clips/s | loader / raw decode | pipeline clips/s "
             "| pipeline / raw decode | ceiling clips/s | pipeline / ceiling | peak GPU GiB "
             "| fast_decode pipeline clips/s (x pipeline) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for arch, res in r["results"].items():
        s = res["spec"]
        for path in ("train", "test"):
            d = res[path]
            lines.append(f"| {arch} ({res['precision']['precision']}) | {s['frames']}x{s['crop']}^2 b{s['batch']} | "
                         f"{path} | {d['raw_decode_clips_s']:.1f} | {d.get('loader_clips_s', float('nan')):.1f} | "
                         f"{d.get('loader_to_raw_decode', float('nan')):.2f} | {d['pipeline_clips_s']:.1f} | "
                         f"{d['pipeline_to_raw_decode']:.2f} | {d.get('ceiling_clips_s', float('nan')):.1f} | "
                         f"{d.get('pipeline_to_ceiling', float('nan')):.2f} | {d.get('peak_gpu_memory_gib', '-')} | "
                         f"{d['fast_decode_pipeline_clips_s']:.1f} (x{d['fast_decode_over_pipeline']:.2f}) |")
    if "stopped" in r:
        lines.append(f"\n**Incomplete:** {r['stopped']}.\n")
    d = r.get("decode_at_training_resolution")
    if d is not None:
        lines.append(f"\nDecode at training resolution (decord, every 2nd frame): full {d['full_frames_per_s']:.0f} "
                     f"frames/s, resized while decoding to {d['resized_to']} {d['resized_frames_per_s']:.0f} frames/s "
                     f"(x{d['resized_over_full']:.2f}).\n")
    return "\n".join(lines) + "\n"


def _device_name(device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} ({len(os.sched_getaffinity(0))} cores available)"


if __name__ == "__main__":
    main()
