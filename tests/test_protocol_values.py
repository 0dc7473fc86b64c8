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
