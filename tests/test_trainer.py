"""The shared training loop and the engine's speed paths: device-side augmentation equals the per-sample
torchvision transforms for the same parameters, uint8 test views equal the per-clip transform, sampler and
progress, and a killed run resumes to the same weights."""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from severe_bench.engine.device_augment import DeviceAugment, color_jitter, erase_boxes
from severe_bench.engine.device_randaugment import OP_ID, OPS, rand_augment
from severe_bench.engine.transforms import RandAugmentTimm
from severe_bench.engine.finetune import _mix
from severe_bench.engine.trainer import PassSampler, Precision, Progress, sample_seed
from severe_bench.video.transforms import TestViews, split_train_transform, test_transform, train_transform

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _frames(seed=0, t=4, h=40, w=56):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(1, h, w, 3))
    return np.clip(base + rng.integers(-30, 30, size=(t, h, w, 3)), 0, 255).astype(np.uint8)


def test_batched_colour_jitter_equals_torchvision_per_sample(one_thread):
    split = split_train_transform(crop=24, color_jitter=(0.4, 0.4, 0.4, 0.2))
    clips, orders, factors = [], [], []
    for i in range(6):
        torch.manual_seed(i)
        clip, p = split(_frames(i))
        clips.append(clip)
        orders.append(p["jitter_order"])
        factors.append(p["jitter_factors"])
    x = torch.stack(clips).float() / 255  # (B, T, 3, H, W)
    got = color_jitter(x, torch.stack(orders), torch.stack(factors))
    ref_jitter = v2.ColorJitter(0.4, 0.4, 0.4, 0.2)
    for i in range(len(clips)):
        f = factors[i].tolist()
        params = {"fn_idx": orders[i], "brightness_factor": f[0], "contrast_factor": f[1],
                  "saturation_factor": f[2], "hue_factor": f[3]}
        want = ref_jitter.transform(tv_tensors.Video(x[i]), params)
        assert torch.allclose(got[i], want.as_subclass(torch.Tensor), atol=2e-5), i
    assert len({tuple(o.tolist()) for o in orders}) > 1, "samples draw their own op order"


def test_split_pipeline_draws_what_the_cpu_pipeline_draws(one_thread):
    frames = _frames(3)
    # spatial half alone: bit-identical crop and flip for the same seed
    torch.manual_seed(7)
    cpu = train_transform(crop=24, color_jitter=None, mean=MEAN, std=STD)(frames)
    torch.manual_seed(7)
    clip, params = split_train_transform(crop=24, color_jitter=None)(frames)
    dev = DeviceAugment(MEAN, STD)(clip[None], {k: v[None] for k, v in params.items()})[0]
    assert torch.allclose(dev, cpu, atol=1e-6)
    # with jitter: the same parameters; the CPU pipeline rounds to uint8 after each op, the device one not
    torch.manual_seed(7)
    cpu = train_transform(crop=24, mean=MEAN, std=STD)(frames)
    torch.manual_seed(7)
    clip, params = split_train_transform(crop=24)(frames)
    dev = DeviceAugment(MEAN, STD)(clip[None], {k: v[None] for k, v in params.items()})[0]
    assert (dev - cpu).abs().mean() < 4 / 255 / min(STD)


FILL = [124, 116, 104]


def _uint8_clips(n, t=3, h=20, w=28):
    return torch.stack([torch.from_numpy(_frames(i, t, h, w)).permute(0, 3, 1, 2) for i in range(n)])


@pytest.mark.parametrize("op", OPS)
def test_batched_randaugment_op_equals_torchvision_per_clip(one_thread, op):
    """Each op, batched with a magnitude per clip, gives torchvision's uint8 result for every clip exactly."""
    clips = _uint8_clips(6)
    mags = torch.tensor([-0.8, -0.3, 0.0, 0.2, 0.5, 0.9], dtype=torch.float64)
    mags = {"TranslateX": mags * 12, "TranslateY": mags * 9, "Rotate": mags * 30, "Solarize": mags.abs(),
            "Posterize": torch.tensor([4.0, 4.6, 5.0, 6.2, 7.9, 8.0], dtype=torch.float64)}.get(op, mags)
    got = rand_augment(clips, torch.full((6, 1), OP_ID[op]), mags[:, None], FILL)
    ref = RandAugmentTimm(1, 7, fill=FILL)
    for i in range(6):
        want = ref._apply_image_or_video_transform(clips[i], op, float(mags[i]), interpolation=ref.interpolation,
                                                   fill=ref._fill)
        assert torch.equal(got[i], want), (op, i)
    if op not in ("Identity", "Equalize", "AutoContrast"):
        assert len({got[i].float().mean().item() for i in range(6)}) > 2, "each clip has its own magnitude"


def test_randaugment_drawn_in_workers_and_applied_batched_equals_the_cpu_transform(one_thread):
    """The worker's draws + the batched device ops = the per-clip CPU RandAugment for the same seed, op slot
    by op slot (mixed ops in one batch), and the same ops for every frame of a clip."""
    ra = RandAugmentTimm(4, 7, 0.5, fill=FILL)
    clips = _uint8_clips(24, t=2)
    clips[:, 1] = clips[:, 0]
    ops, mags, want = [], [], []
    for i in range(len(clips)):
        torch.manual_seed(i)
        o, m = ra.draw(20, 28)
        ops.append(o)
        mags.append(m)
        torch.manual_seed(i)
        want.append(ra(tv_tensors.Video(clips[i])).as_subclass(torch.Tensor))
    ops = torch.stack(ops)
    assert len(set(ops.flatten().tolist())) > 8 and (ops == -1).any(), "a mixed batch, skipped slots included"
    got = rand_augment(clips, ops, torch.stack(mags), FILL)
    assert torch.equal(got, torch.stack(want))
    assert torch.equal(got[:, 0], got[:, 1])


def test_split_vit_pipeline_equals_the_cpu_pipeline(one_thread):
    """Crop, flip, RandAugment, normalisation, erasing: the split pipeline (workers draw, the device applies)
    gives the all-CPU result for the same seed — the erasing being timm's ``RandomErasing`` on the (T, C, H, W)
    normalised clip, as VideoMAE applies it (constant fill here; the noise fill is tested below)."""
    import random

    from timm.data.random_erasing import RandomErasing
    from torchvision.transforms.v2 import functional as TF

    frames = _frames(4, t=6, h=36, w=44)
    erased = 0
    for seed in range(6):
        torch.manual_seed(seed)
        split = split_train_transform(crop=24, color_jitter=None, randaugment=RandAugmentTimm(4, 7, 0.5, fill=FILL),
                                      erase_p=0.5)
        clip, params = split(frames)
        dev = DeviceAugment(MEAN, STD, randaugment_fill=FILL)(clip[None], {k: v[None] for k, v in params.items()})[0]
        torch.manual_seed(seed)
        cpu_split = split_train_transform(crop=24, color_jitter=None)
        video = cpu_split.spatial(tv_tensors.Video(torch.from_numpy(frames).permute(0, 3, 1, 2)))
        video = RandAugmentTimm(4, 7, 0.5, fill=FILL)(video).as_subclass(torch.Tensor)
        x = TF.normalize(video.float() / 255, MEAN, STD)            # (T, C, H, W), as VideoMAE's buffer
        random.seed(int(torch.randint(0, 2**62, (1,))))
        x = RandomErasing(0.5, mode="const", max_count=1, device="cpu")(x).transpose(0, 1)
        assert torch.allclose(dev, x, atol=1e-6), seed
        erased += int((params["erase_boxes"][:, 2] > 0).sum())
    assert 0 < erased < 6 * 6


def test_erasing_is_drawn_per_frame_and_fills_with_reproducible_noise(one_thread):
    from severe_bench.video.transforms import FrameErasing

    torch.manual_seed(0)
    boxes = torch.stack([FrameErasing(0.25).draw(8, 30, 40) for _ in range(200)])  # (clips, T, 4)
    on = boxes[..., 2] > 0
    assert 0.2 < on.float().mean() < 0.3, "each frame erased with probability 0.25"
    both = on[:, 0] & on[:, 1]
    assert (boxes[both, 0] != boxes[both, 1]).any(), "frames draw their own boxes"
    area = (boxes[..., 2] * boxes[..., 3])[on].float() / (30 * 40)
    assert area.min() >= 0.015 and area.max() <= 0.36
    x = torch.randn(4, 3, 8, 30, 40)
    got = erase_boxes(x, boxes[:4], "pixel", torch.Generator().manual_seed(5))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    for i in range(4):
        for t in range(8):
            top, left, h, w = boxes[i, t].tolist()
            want = x[i, :, t].clone()
            want[:, top:top + h, left:left + w] = noise[i, :, t, top:top + h, left:left + w]
            assert torch.equal(got[i, :, t], want)
    assert torch.equal(got, erase_boxes(x, boxes[:4], "pixel", torch.Generator().manual_seed(5)))
    with pytest.raises(ValueError, match="generator"):
        erase_boxes(x, boxes[:4], "pixel")


def test_batched_erasing_equals_random_erasing(one_thread):
    x = torch.randn(4, 3, 2, 20, 20)
    split = split_train_transform(crop=20, color_jitter=None, erase_p=1.0)
    boxes = []
    for i in range(4):
        torch.manual_seed(i)
        boxes.append(split(_frames(i, t=2, h=30, w=30))[1]["erase_boxes"])
    got = erase_boxes(x, torch.stack(boxes))
    for i in range(4):
        for t, (top, left, h, w) in enumerate(boxes[i].tolist()):
            want = x[i, :, t].clone()
            want[..., top:top + h, left:left + w] = 0
            assert h > 0 and torch.equal(got[i, :, t], want)


@pytest.mark.parametrize("crops", [1, 3])
def test_uint8_test_views_equal_the_per_clip_transform(one_thread, crops):
    frames = _frames(5, t=12, h=36, w=48)
    idx = np.array([[0, 1, 2, 3], [2, 3, 4, 5], [8, 9, 10, 11]])
    unique, inverse = np.unique(idx, return_inverse=True)
    views = TestViews(32, 28, crops)(frames[unique], inverse.reshape(idx.shape))
    got = DeviceAugment(MEAN, STD)(views)
    ref = test_transform(resize_short=32, crop=28, spatial_crops=crops, mean=MEAN, std=STD)
    want = torch.cat([v if v.dim() == 5 else v[None] for v in (ref(frames[row]) for row in idx)])
    assert views.dtype == torch.uint8 and got.shape == want.shape
    assert torch.allclose(got, want, atol=1e-6)


def test_mixup_targets_live_on_the_clips_device():
    """Soft targets are made where the targets are (the bug: built on the CPU, scattered with CUDA ones)."""
    clips = torch.zeros(4, 3, 2, 8, 8, device="meta")
    target = torch.tensor([0, 1, 2, 1], device="meta")
    aug = {"mixup": 0.8, "cutmix": 1.0, "label_smoothing": 0.1}
    for seed in range(4):
        x, soft = _mix(clips, target, aug, 5, torch.Generator().manual_seed(seed))
        assert soft.device.type == "meta" and soft.shape == (4, 5) and x.device.type == "meta"
    x, soft = _mix(torch.rand(4, 3, 2, 8, 8), torch.tensor([0, 1, 2, 1]), aug, 5, torch.Generator().manual_seed(0))
    assert torch.allclose(soft.sum(1), torch.ones(4)) and soft.min() > 0


def test_pass_sampler_order_depends_on_seed_and_pass_and_ranks_partition_it():
    s = PassSampler(10, seed=3)
    s.set_pass(1)
    first = list(s)
    assert first == list(s) and all(p == 1 for p, _ in first) and sorted(i for _, i in first) == list(range(10))
    s.set_pass(2)
    assert list(s) != first
    ranks = [PassSampler(10, seed=3, rank=r, world=3) for r in range(3)]
    for r in ranks:
        r.set_pass(1)
    shares = [list(r) for r in ranks]
    assert all(len(sh) == 4 for sh in shares)
    assert {i for sh in shares for _, i in sh} == set(range(10))
    assert sample_seed(0, 1, 2) == sample_seed(0, 1, 2) != sample_seed(0, 1, 3)


def test_progress_logs_rate_and_eta_when_not_a_terminal():
    lines = []
    prog = Progress(lines.append, "task", passes=2, every_s=0.0, terminal=False)
    prog.start_pass(0, steps=4)
    for _ in range(3):
        prog.update(8)
    prog.end_pass()
    assert len(lines) == 3 and "pass 1/2 step 1/4" in lines[0]
    assert "clips/s" in lines[-1] and "ETA pass" in lines[-1] and "run" in lines[-1]


def test_default_workers_share_the_cores_between_local_ranks(monkeypatch):
    from severe_bench.engine.trainer import default_workers

    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    alone = default_workers()
    assert alone == max(1, len(os.sched_getaffinity(0)))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(alone * 2))
    assert default_workers() == 1


def test_precision_auto_is_fp32_on_cpu_and_bf16_autocast_when_asked():
    p = Precision("cpu")
    assert p.record()["precision"] == "fp32" and not p.channels_last
    b = Precision("cpu", "bf16")
    with b.autocast():
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16


_TRAIN_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from types import SimpleNamespace
    import torch
    from torch import nn
    from severe_bench.engine.trainer import Precision, fit, optimise, sample_seed

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 12
        def __getitem__(self, key):
            p, i = key
            g = torch.Generator().manual_seed(sample_seed(0, p, i))
            x = torch.randn(6, generator=g)
            return {"x": x, "y": int(x.sum() > 0)}

    def collate(items):
        return {"failed": [], "size": len(items), "x": torch.stack([it["x"] for it in items]),
                "y": torch.tensor([it["y"] for it in items])}

    def train(work, kill_at=None):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.3), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        def step(b, p, s):
            if (p, s) == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            loss = nn.functional.cross_entropy(model(b["x"]), b["y"])
            optimise(opt, loss)
            return loss, 1
        ctx = SimpleNamespace(work_dir=Path(work), seed=0, workers=0, device=torch.device("cpu"),
                              log=lambda m: None, task=SimpleNamespace(id="t"))
        fit(ctx=ctx, model=model, optimizer=opt, dataset=Items(), batch_size=4, passes=3, train_batch=step,
            collate=collate, precision=Precision("cpu"))
        return model

    if __name__ == "__main__":
        train(sys.argv[1], kill_at=(1, 2))
""")


def test_killed_and_resumed_run_ends_with_the_same_weights(tmp_path):
    script = tmp_path / "train_job.py"
    script.write_text(_TRAIN_SCRIPT)
    work_a, work_b = tmp_path / "a", tmp_path / "b"
    work_a.mkdir()
    work_b.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([sys.executable, str(script), str(work_b)], env=env, capture_output=True, text=True)
    assert p.returncode == -9, p.stderr  # SIGKILL in the middle of pass 2
    assert torch.load(work_b / "state.pt", weights_only=True)["passes_done"] == 1
    sys.path.insert(0, str(tmp_path))
    try:
        import train_job
    finally:
        sys.path.remove(str(tmp_path))
    resumed = train_job.train(work_b)
    uninterrupted = train_job.train(work_a)
    for (k, a), (_, b) in zip(uninterrupted.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    assert not math.isnan(float(torch.load(work_b / "state.pt", weights_only=True)["history"][-1]["loss"]))


class _OnesItems(torch.utils.data.Dataset):
    """8 identical items: the tests below look at what fit does with the steps, not at the data."""

    def __len__(self):
        return 8

    def __getitem__(self, key):
        return {"x": torch.ones(3)}


def _stack(items):
    return {"failed": [], "size": len(items), "x": torch.stack([it["x"] for it in items])}


def test_training_stops_at_the_first_non_finite_loss(tmp_path):
    from types import SimpleNamespace

    from severe_bench.engine.trainer import fit
    from severe_bench.errors import SevereError

    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    calls = []

    def step(b, p, s):
        calls.append((p, s))
        loss = model(b["x"]).sum() * (float("nan") if s == 1 else 1.0)
        return loss, 1

    ctx = SimpleNamespace(work_dir=tmp_path, seed=0, workers=0, device=torch.device("cpu"), log=lambda m: None,
                          task=SimpleNamespace(id="t"))
    with pytest.raises(SevereError, match="non-finite"):
        fit(ctx=ctx, model=model, optimizer=opt, dataset=_OnesItems(), batch_size=2, passes=2, train_batch=step,
            collate=_stack, precision=Precision("cpu"))
    assert calls == [(0, 0), (0, 1)] and not (tmp_path / "state.pt").exists()


def test_history_records_the_optimiser_steps_a_pass_took(tmp_path):
    """A counting batch takes a varying number of steps: the history counts steps, not batches."""
    from types import SimpleNamespace

    from severe_bench.engine.trainer import fit, optimise

    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    taken = {0: 0, 1: 0}

    def step(b, p, s):
        k = 1 + (p + s) % 3   # 1-3 steps per batch, like a batch of segments tracked until they finish
        total = torch.zeros(())
        for _ in range(k):
            loss = model(b["x"]).pow(2).mean()
            optimise(opt, loss)
            total = total + loss.detach()
        taken[p] += k
        return total, k

    ctx = SimpleNamespace(work_dir=tmp_path, seed=0, workers=0, device=torch.device("cpu"), log=lambda m: None,
                          task=SimpleNamespace(id="t"))
    res = fit(ctx=ctx, model=model, optimizer=opt, dataset=_OnesItems(), batch_size=2, passes=2, train_batch=step,
              collate=_stack, precision=Precision("cpu"))
    assert [h["steps"] for h in res.history] == [taken[0], taken[1]] == [7, 8]
    assert [h["skipped_steps"] for h in res.history] == [0, 0]
    assert torch.load(tmp_path / "state.pt", weights_only=True)["history"] == res.history


_DDP_SCRIPT = textwrap.dedent("""
    import json, sys
    from datetime import timedelta
    from pathlib import Path
    from types import SimpleNamespace
    import torch
    from torch import nn
    from severe_bench.engine import distributed
    from severe_bench.engine.trainer import PassSampler, Precision, fit, optimise

    N, BATCH = 8, 2
    # a short collective timeout: a rank left waiting fails the run within seconds instead of hanging
    torch.distributed.init_process_group("gloo", timeout=timedelta(seconds=20))
    device = distributed.setup(torch.device("cpu"))
    rank, world = distributed.rank(), distributed.world_size()
    # the videos of rank 1's first batch of pass 1 cannot be decoded: that rank has nothing to train on there
    BAD = {int(i) for i in PassSampler(N, 0, rank=1, world=world).order()[:BATCH]}

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return N
        def __getitem__(self, key):
            p, i = key
            if i in BAD:
                return {"ok": False, "video": f"v{i}.mp4", "reason": "corrupt"}
            x = torch.randn(6, generator=torch.Generator().manual_seed(100 * p + i))
            return {"ok": True, "x": x, "y": int(x.sum() > 0)}

    def collate(items):
        ok = [it for it in items if it["ok"]]
        out = {"failed": [(it["video"], it["reason"]) for it in items if not it["ok"]], "size": len(ok)}
        if ok:
            out.update(x=torch.stack([it["x"] for it in ok]), y=torch.tensor([it["y"] for it in ok]))
        return out

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    forward = distributed.wrap(model, device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def step(b, p, s):
        loss = nn.functional.cross_entropy(forward(b["x"]), b["y"])
        optimise(opt, loss)
        return loss, 1

    logs = []
    out = Path(sys.argv[1])
    ctx = SimpleNamespace(work_dir=out, seed=0, workers=0, device=device, log=logs.append,
                          task=SimpleNamespace(id="t"))
    res = fit(ctx=ctx, model=model, optimizer=opt, dataset=Items(), batch_size=BATCH, passes=2, train_batch=step,
              collate=collate, precision=Precision("cpu"))
    (out / f"rank{rank}.json").write_text(json.dumps({
        "bad": sorted(f"v{i}.mp4" for i in BAD), "unreadable": sorted(res.unreadable), "logs": logs,
        "history": res.history,
        "params": [p.detach().flatten().tolist() for p in model.parameters()]}))
    distributed.shutdown()
""")


def test_ddp_ranks_skip_a_step_together_when_one_ranks_whole_batch_is_unreadable(tmp_path, torchrun):
    """Without the agreement, rank 0 waits in DDP's gradient all-reduce for a rank that skipped the step."""
    import json

    out = tmp_path / "work"
    out.mkdir()
    torchrun(_DDP_SCRIPT, out)
    r0, r1 = (json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["params"] == r1["params"], "the ranks took the same steps"
    assert r0["unreadable"] == r1["unreadable"] == r0["bad"]  # still counted, on every rank
    assert "pass 1/2: 1 of 2 steps skipped on every rank" in " ".join(r0["logs"])
    assert not any("skipped" in line for line in r1["logs"]), "rank 0 reports"
    # 2 steps a pass per rank; pass 1 skipped one of them on both ranks
    for r in (r0, r1):
        assert [(h["steps"], h["skipped_steps"]) for h in r["history"]] == [(1, 1), (2, 0)]
