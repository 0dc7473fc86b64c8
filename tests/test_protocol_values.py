"""Protocol values that decide published numbers (PROTOCOL.md §4 linear, §5.2 Charades optimiser, §6 ViT)."""

import copy

import pytest
import torch
from torch import nn

from severe_bench import registry
from severe_bench.registry import get_task

TINY = {"input": {"frames": 2, "fps": 16, "crop": 16}, "batch_size": 4,
        "schedule": {"passes": 1, "clips_per_video": 1, "milestones": [1]},
        "test": {"clips": 1, "frames": 2, "fps": 16, "resize": 18, "crop": 16}}


@pytest.fixture(scope="module")
def motion_root(tmp_path_factory):
    from severe_bench.synth import generate_suite

    root = tmp_path_factory.mktemp("synth")
    generate_suite(root, seed=0, scale="tiny")
    return root / "synth_motion"


def _linear_run(root, work_dir, protocol_name: str):
    from severe_bench.checkpoints import load_checkpoint
    from severe_bench.engine import finetune
    from severe_bench.engine.context import RunContext

    mode = {"linear": "train", "linear_frozen_bn": "eval"}[protocol_name]
    task = get_task("synth_motion_linear", overrides={"protocol": {**TINY, "name": protocol_name,
                                                                   "backbone_mode": mode}})
    train, test = registry.read_split(task, root, "train")[:4], registry.read_split(task, root, "test")[:2]
    torch.manual_seed(0)
    ckpt = load_checkpoint("scratch", count_flops=False)
    before = copy.deepcopy(ckpt.backbone.state_dict())
    ctx = RunContext(task=task, root=root, train_samples=train, test_samples=test, num_classes=6, checkpoint=ckpt,
                     normalisation=task.protocol["normalisation"], seed=0, device=torch.device("cpu"),
                     work_dir=work_dir, workers=0, log=lambda m: None)
    finetune.run(ctx)
    return before, ckpt.backbone.state_dict(), ckpt.backbone


def test_linear_protocol_adapts_batchnorm_statistics_but_not_weights(motion_root, tmp_path, one_thread):
    before, after, backbone = _linear_run(motion_root, tmp_path, "linear")
    params = {n for n, _ in backbone.named_parameters()}
    assert all(torch.equal(before[k], after[k]) for k in params)  # every weight frozen (BN affine too)
    stats = [k for k in before if k.endswith("running_mean")]
    assert stats and all(not torch.equal(before[k], after[k]) for k in stats)  # every BN adapted
    assert all(int(after[k]) > int(before[k]) for k in before if k.endswith("num_batches_tracked"))


def test_linear_frozen_bn_keeps_pretraining_statistics(motion_root, tmp_path, one_thread):
    before, after, _ = _linear_run(motion_root, tmp_path, "linear_frozen_bn")
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_linear_schedules_follow_the_reference_and_table_b2():
    ucf = get_task("ucf101_linear").protocol
    assert (ucf["name"], ucf["backbone_mode"], ucf["freeze_backbone"]) == ("linear", "train", True)
    assert ucf["schedule"] == {"kind": "multistep", "passes": 10, "clips_per_video": 10, "milestones": [4, 8, 10],
                               "gamma": 0.3}
    assert (ucf["batch_size"], ucf["input"]["frames"], ucf["test"]["frames"], ucf["optimizer"]["lr"]) == \
        (128, 16, 16, 1e-2)
    assert ucf["head"]["init_std"] == 0.01
    expect = {"gym99_linear": (64, 12, 10, [4, 8, 10], 1e-2), "ntu60_linear": (64, 12, 10, [4, 8, 10], 1e-2),
              "ssv2_linear": (64, 20, 2, [10, 15], 1e-2), "ek100_verb_linear": (32, 30, 1, [20, 25], 2.5e-3)}
    for tid, (batch, passes, clips, milestones, lr) in expect.items():
        p = get_task(tid).protocol
        assert (p["batch_size"], p["schedule"]["passes"], p["schedule"]["clips_per_video"],
                p["schedule"]["milestones"], p["optimizer"]["lr"]) == (batch, passes, clips, milestones, lr), tid
        assert p["name"] == "linear" and p["backbone_mode"] == "train" and p["input"]["frames"] == 16
    frozen = get_task("ucf101_linear_frozen_bn")
    assert frozen.protocol["name"] == "linear_frozen_bn" and frozen.protocol["backbone_mode"] == "eval"
    assert frozen.protocol_hash != get_task("ucf101_linear").protocol_hash
    assert {k: v for k, v in frozen.protocol.items() if k not in ("name", "backbone_mode")} == \
        {k: v for k, v in ucf.items() if k not in ("name", "backbone_mode")}


def test_charades_sgd_is_nesterov_without_weight_decay_on_batchnorm():
    from severe_bench.engine.model import build_optimizer

    spec = get_task("charades").protocol["optimizer"]
    assert spec["nesterov"] is True and spec["bn_weight_decay"] == 0.0 and spec["weight_decay"] == 1e-4
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv3d(3, 4, 1), nn.BatchNorm3d(4), nn.Flatten(), nn.Linear(4, 2)).double()
    with torch.no_grad():
        model[1].weight.fill_(2.0)
        model[1].bias.fill_(1.0)
    opt = build_optimizer(model, spec, batch_size=16)
    assert opt.defaults["nesterov"] is True and opt.defaults["momentum"] == 0.9 and opt.defaults["dampening"] == 0
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()  # zero gradients: only weight decay moves a parameter
    conv_w, conv_b, bn_w, bn_b, fc_w, fc_b = [(b, a.detach()) for b, a in zip(before, model.parameters())]
    assert torch.equal(*bn_w) and torch.equal(*bn_b)  # BatchNorm: no weight decay
    for old, new in (conv_w, fc_w):  # first Nesterov step: d = wd * p, buf = d, update lr * (d + 0.9 * buf)
        torch.testing.assert_close(new, old * (1 - 0.0375 * 1e-4 * 1.9), rtol=1e-12, atol=0)
    # the CNN fine-tunes keep Adam with one group (no BatchNorm special case)
    adam = build_optimizer(model, get_task("ucf101").protocol["optimizer"], 32)
    assert isinstance(adam, torch.optim.Adam) and len(adam.param_groups) == 1


def _videomae_ssv2_test(n: int, T: int, chunk: int) -> list[int]:
    """VideoMAE ssv2.py ``loadvideo_decord`` (test mode) then ``buffer[chunk::2]``, transcribed."""
    tick = n / float(T)
    idx = [int(tick / 2.0 + tick * x) for x in range(T)] + [int(tick * x) for x in range(T)]
    while len(idx) < T * 2:
        idx.append(idx[-1])
    return sorted(idx)[chunk::2]


@pytest.mark.parametrize("n", [16, 30, 37, 48, 121])
def test_ssv2_segment_sampling_matches_videomae(n):
    import numpy as np

    from severe_bench.video.sampling import test_clip_indices, train_clip_indices

    clips = test_clip_indices(n, 12.0, 16, num_clips=2, segments=True)
    assert [list(c) for c in clips] == [_videomae_ssv2_test(n, 16, 0), _videomae_ssv2_test(n, 16, 1)]
    seg = n // 16
    for seed in range(5):
        idx = train_clip_indices(n, 12.0, 16, rng=np.random.default_rng(seed), segments=True)
        # one frame from each of 16 equal segments: the clip spans the whole video and never loops
        assert all(i * seg <= f < (i + 1) * seg for i, f in enumerate(idx))
    assert list(train_clip_indices(10, 12.0, 16, rng=np.random.default_rng(0), segments=True)) == [0] * 16


def test_ssv2_vit_protocol_reads_segments_through_the_loader(tmp_path):
    """A real 12 fps webm-like clip of 2.5 s: the ViT SSv2 clip covers all of it (a 16x4 window would loop)."""
    import numpy as np

    from severe_bench.data.clips import TestClips, TrainClips
    from severe_bench.data.sample import Sample
    from severe_bench.synth.encode import write_video

    n = 30
    frames = np.zeros((n, 32, 32, 3), dtype=np.uint8)
    for k in range(n):
        frames[k] = 8 * k  # frame k has brightness 8k: the decoded clip tells which frames were read
    write_video(tmp_path / "v.mp4", frames, 12.0)
    proto = get_task("ssv2", track="vit").protocol
    assert proto["input"]["sampling"] == "segments" and proto["input"]["stride"] is None
    assert proto["train_augment"]["hflip"] is False and proto["test"]["clips"] == 2
    sample = Sample(video="v.mp4", label=0, id="v", meta={})
    read = lambda clip: [int(round(float(f.float().mean()) / 8)) for f in clip]  # noqa: E731
    train = TrainClips([sample], tmp_path, {**proto["input"], "short_video": proto["short_video"]},
                       lambda c: torch.as_tensor(np.asarray(c)), 1, seed=0)
    got = read(train[0]["clip"])
    assert all(i * (n // 16) <= f < (i + 1) * (n // 16) for i, f in enumerate(got)), got
    test = TestClips([sample], tmp_path, {**proto["test"], "short_video": proto["short_video"]}, 2,
                     lambda c: torch.as_tensor(np.asarray(c)))
    views = test[0]["clip"]
    assert [read(v) for v in views] == [_videomae_ssv2_test(n, 16, 0), _videomae_ssv2_test(n, 16, 1)]


def test_ssv2_vit_train_transform_never_flips():
    from torchvision.transforms import v2

    from severe_bench.engine.transforms import RandAugmentTimm, build_train_transform

    def spatial_ops(proto):
        t = build_train_transform(proto, proto["normalisation"])
        return [type(op) for op in getattr(t, "inner", t).spatial.transforms]

    ssv2 = spatial_ops(get_task("ssv2", track="vit").protocol)
    assert v2.RandomHorizontalFlip not in ssv2
    ssv2_proto = get_task("ssv2", track="vit").protocol
    assert isinstance(build_train_transform(ssv2_proto, ssv2_proto["normalisation"]).randaugment, RandAugmentTimm)
    assert v2.RandomHorizontalFlip in spatial_ops(get_task("ucf101", track="vit").protocol)


def test_vit_values_follow_seed_001_and_videomae():
    ft = get_task("ucf101", track="vit").protocol
    assert ft["train_augment"]["randaugment"] == {"magnitude": 7, "num_ops": 4, "magnitude_std": 0.5}
    assert ft["head"] == {"dropout": 0.0, "drop_path": 0.2}
    assert ft["optimizer"]["layer_decay"] == 0.7 and ft["optimizer"]["weight_decay"] == 0.05
    assert ft["schedule"]["passes"] == 100 and ft["schedule"]["warmup_passes"] == 5
    assert ft["schedule"]["clips_per_video"] == 2  # VideoMAE --num_sample 2
    assert (ft["test"]["clips"], ft["test"]["spatial_crops"]) == (5, 3)
    assert get_task("hmdb51", track="vit").protocol["test"]["clips"] == 10
    ssv2 = get_task("ssv2", track="vit").protocol
    assert ssv2["head"]["drop_path"] == 0.1 and ssv2["schedule"]["passes"] == 40
    probe = get_task("ucf101_linear", track="vit").protocol
    assert probe["optimizer"]["name"] == "adamw" and probe["optimizer"]["base_lr"] == 1e-2
    assert probe["optimizer"]["weight_decay"] == 0.0 and probe["schedule"]["passes"] == 100


def test_randaugment_follows_timm_rand_m7_n4_mstd05():
    from severe_bench.engine.transforms import RandAugmentTimm

    ra = RandAugmentTimm(num_ops=4, magnitude=7, magnitude_std=0.5, fill=[124, 116, 104])
    assert ra.num_magnitude_bins == 11  # level / 10 as timm: m7 rotates up to 21 degrees, not 7
    torch.manual_seed(0)
    video = torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8)
    levels = []
    for _ in range(150):
        out = ra(video)
        assert out.shape == video.shape and out.dtype == torch.uint8
        assert len(ra.levels) == 4
        levels += ra.levels
    applied = [v for v in levels if v is not None]
    assert 0.4 < len(applied) / len(levels) < 0.6  # each op applied with probability 0.5
    assert 6.8 < sum(applied) / len(applied) < 7.2 and 0 <= min(applied) and max(applied) <= 10
    assert len({round(v, 3) for v in applied}) > 50  # continuous levels, drawn per op
    # the same ops for every frame of the clip
    clip = torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8).repeat(4, 1, 1, 1)
    out = ra(clip)
    assert all(torch.equal(out[0], out[t]) for t in range(4))


def test_vit_min_and_warmup_lr_scale_with_the_batch_like_the_lr():
    from severe_bench.engine.model import base_lr, scaled_schedule
    from severe_bench.engine.schedule import lr_at

    p = get_task("ucf101", track="vit").protocol
    for batch in (4, 32, 512):
        lr0 = base_lr(p["optimizer"], batch)
        sched = scaled_schedule(p["schedule"], p["optimizer"], batch)
        assert lr0 == pytest.approx(1e-3 * batch / 512)
        assert sched["min_lr"] == pytest.approx(1e-5 * batch / 512)  # VideoMAE: min_lr * batch / 256 videos
        assert lr_at(sched, lr0, 0.0) == pytest.approx(1e-8 * batch / 512)
        assert lr_at(sched, lr0, p["schedule"]["passes"]) == pytest.approx(sched["min_lr"]) and sched["min_lr"] < lr0
    charades = get_task("charades").protocol  # an absolute lr: its schedule is used as written
    assert scaled_schedule(charades["schedule"], charades["optimizer"], 16) == charades["schedule"]


def test_charades_short_side_jitter_is_inverse_uniform():
    """PySlowFast DATA.INV_UNIFORM_SAMPLE: size = 1 / U(1/340, 1/256), so E[1/size] is the interval's middle."""
    from severe_bench.video.transforms import RandomShortSideScale

    aug = get_task("charades").protocol["train_augment"]
    assert aug["short_side_scale"] == [256, 340] and aug["short_side_inverse_uniform"] is True
    torch.manual_seed(0)
    video = torch.zeros((1, 3, 4, 6), dtype=torch.uint8)
    out = RandomShortSideScale(256, 340, True)(video)
    assert 256 <= out.shape[-2] <= 340 and out.shape[-1] == round(out.shape[-2] * 1.5)  # short side, aspect kept
    inverse, uniform = RandomShortSideScale(256, 340, True), RandomShortSideScale(256, 340, False)
    inv = [1.0 / inverse.make_params([video])["size"] for _ in range(4000)]
    uni = [1.0 / uniform.make_params([video])["size"] for _ in range(4000)]
    middle = (1 / 256 + 1 / 340) / 2                   # 3.424e-3; a uniform size gives ln(340/256)/84 = 3.377e-3
    assert abs(sum(inv) / len(inv) - middle) < 1.2e-5
    assert abs(sum(uni) / len(uni) - 0.0033774) < 1.2e-5
    assert min(1 / v for v in inv) >= 256 and max(1 / v for v in inv) <= 340


def _multilabel_run(root, work_dir, precise: int):
    from severe_bench.checkpoints import load_checkpoint
    from severe_bench.engine import finetune
    from severe_bench.engine.context import RunContext

    # 32 px, not 16: at 16 px layer 4 is 1x1x1, so its BatchNorm sees 2 values per channel and SGD at the
    # protocol's lr can blow the weights up in two steps (non-finite test scores; it did on one CPU)
    tiny = {"input": {"frames": 2, "stride": 2, "stride_fps": 16, "crop": 32}, "batch_size": 2,
            "train_augment": {"short_side_scale": [36, 40]},
            "schedule": {"passes": 1, "clips_per_video": 1, "warmup_passes": 0, "milestones": [1]},
            "test": {"clips": 1, "frames": 2, "stride": 2, "stride_fps": 16, "resize": 32, "crop": 32,
                     "spatial_crops": 1},
            "precise_bn_batches": precise}
    task = get_task("synth_multilabel", overrides={"protocol": tiny})
    train, test = registry.read_split(task, root, "train")[:4], registry.read_split(task, root, "test")[:1]
    torch.manual_seed(0)
    ckpt = load_checkpoint("scratch", count_flops=False)
    logs = []
    work_dir.mkdir()
    ctx = RunContext(task=task, root=root, train_samples=train, test_samples=test, num_classes=task.num_classes,
                     checkpoint=ckpt, normalisation=task.protocol["normalisation"], seed=0,
                     device=torch.device("cpu"), work_dir=work_dir, workers=0, log=logs.append)
    finetune.run(ctx)
    return ckpt.backbone.state_dict(), logs


def test_charades_recomputes_precise_batchnorm_statistics_before_testing(motion_root, tmp_path, one_thread):
    assert get_task("charades").protocol["precise_bn_batches"] == 200  # PySlowFast BN.NUM_BATCHES_PRECISE
    root = motion_root.parent / "synth_multilabel"
    plain, _ = _multilabel_run(root, tmp_path / "a", 0)
    precise, logs = _multilabel_run(root, tmp_path / "b", 2)
    assert "  precise BatchNorm statistics from 2 training batches" in logs
    weights = [k for k in plain if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert all(torch.equal(plain[k], precise[k]) for k in weights)  # same training, only the statistics differ
    stats = [k for k in plain if k.endswith("running_var")]
    assert all(not torch.equal(plain[k], precise[k]) for k in stats)


def test_non_finite_test_scores_are_a_clear_error(motion_root, tmp_path, one_thread, monkeypatch):
    """A model whose test scores are nan (here: a BatchNorm whose running variance is nan, which training in
    train mode never repairs) stops with what to check and the last losses, not a metric of nan."""
    from severe_bench import checkpoints
    from severe_bench.errors import SevereError

    load = checkpoints.load_checkpoint

    def poisoned(*args, **kwargs):
        ckpt = load(*args, **kwargs)
        bn = next(m for m in ckpt.backbone.modules() if isinstance(m, nn.BatchNorm3d))
        bn.running_var.fill_(float("nan"))
        return ckpt

    monkeypatch.setattr(checkpoints, "load_checkpoint", poisoned)
    with pytest.raises(SevereError, match=r"non-finite scores \(first on .*; last pass losses: [0-9.]+\)\. "
                                          r"Either training diverged"):
        _multilabel_run(motion_root.parent / "synth_multilabel", tmp_path / "a", 0)


def test_vit_layer_decay_groups_follow_videomae():
    """Per parameter, the lr scale and weight decay VideoMAE's optim_factory gives (get_num_layer_for_vit:
    cls_token/pos_embed/patch_embed -> 0, blocks.i -> i + 1, the rest -> depth + 1; scale decay ** (depth + 1 -
    id); no weight decay on 1-D parameters, pos_embed and cls_token)."""
    import re

    from severe_bench.engine.model import VideoClassifier, build_optimizer
    from severe_bench.models import create_backbone

    model = VideoClassifier(create_backbone("vit_s_16", img_size=32, num_frames=4), 5)
    depth, decay, wd = 12, 0.7, 0.05
    opt = build_optimizer(model, {"name": "adamw", "base_lr": 1e-3, "weight_decay": wd, "layer_decay": decay}, 8)
    got = {id(p): (g["lr_scale"], g["weight_decay"]) for g in opt.param_groups for p in g["params"]}
    assert len(got) == sum(1 for _ in model.parameters())
    for name, p in model.named_parameters():
        if any(k in name for k in ("cls_token", "pos_embed", "patch_embed")):
            layer = 0
        elif m := re.search(r"blocks\.(\d+)\.", name):
            layer = int(m.group(1)) + 1
        else:
            layer = depth + 1
        no_wd = p.ndim == 1 or name.endswith(".bias") or "pos_embed" in name or "cls_token" in name
        assert got[id(p)] == pytest.approx((decay ** (depth + 1 - layer), 0.0 if no_wd else wd)), name
    head_only = build_optimizer(torch.nn.Linear(4, 3), {"name": "adamw", "lr": 0.1, "weight_decay": 0.0,
                                                         "layer_decay": decay}, 8)
    assert {g["lr_scale"] for g in head_only.param_groups} == {1.0}
