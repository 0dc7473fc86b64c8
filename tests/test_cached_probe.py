"""The cached-feature linear probe: with augmentation off (one deterministic clip per video) it trains on the
same inputs as the online probe and agrees with it; features are stored fp16 with provenance and reused."""

import json

import numpy as np
import pytest
import torch

from severe_bench import registry
from severe_bench.checkpoints import load_checkpoint
from severe_bench.engine.context import RunContext
from severe_bench.synth import generate_suite

pytestmark = pytest.mark.slow

# synth videos are 38 frames at 25 fps: a 32-frame clip at 16 fps loops the whole video (no random start);
# a random resized crop of scale 1 on their 5:4 frames falls back to the full frame; no flip, no jitter
AUG_OFF = {"protocol": {
    "input": {"frames": 32, "fps": 16, "crop": 32},
    "train_augment": {"random_resized_crop_scale": [1.0, 1.0], "hflip": False, "color_jitter": None},
    "batch_size": 4,
    "schedule": {"passes": 2, "clips_per_video": 2, "milestones": [1], "gamma": 0.1},
    "test": {"clips": 2, "frames": 32, "fps": 16, "resize": 36, "crop": 32, "spatial_crops": 1},
}}


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate_suite(root, seed=0, scale="tiny")
    return root / "synth_motion"


def _ctx(task_id, root, work, overrides, backbone_state):
    task = registry.get_task(task_id, profile="smoke", overrides=overrides)
    ck = load_checkpoint("scratch", count_flops=False)
    ck.backbone.load_state_dict(backbone_state)
    return RunContext(task=task, root=root, train_samples=registry.read_split(task, root, "train"),
                      test_samples=registry.read_split(task, root, "test"), num_classes=6, checkpoint=ck,
                      normalisation=task.protocol["normalisation"], seed=0, device=torch.device("cpu"),
                      work_dir=work, workers=0, log=lambda m: None)


def test_cached_probe_agrees_with_online_probe_when_augmentation_is_off(tiny_suite, tmp_path, one_thread):
    from severe_bench.engine import cached_probe, finetune

    torch.manual_seed(0)
    state = load_checkpoint("scratch", count_flops=False).backbone.state_dict()
    (tmp_path / "online").mkdir()
    (tmp_path / "cached").mkdir()
    cached_overrides = {"protocol": {**AUG_OFF["protocol"], "cached": {"train_views_per_video": 1}}}
    # the online probe with BatchNorm frozen (linear_frozen_bn's backbone_mode): features independent of the batch
    frozen_bn = {"protocol": {**AUG_OFF["protocol"], "backbone_mode": "eval"}}
    online = finetune.run(_ctx("synth_motion_linear", tiny_suite, tmp_path / "online", frozen_bn, state))
    ctx = _ctx("synth_motion_linear_cached", tiny_suite, tmp_path / "cached", cached_overrides, state)
    cached = cached_probe.run(ctx)
    a, b = online.predictions["videos"], cached.predictions["videos"]
    assert list(a) == list(b)
    sa = np.array([v["scores"] for v in a.values()])
    sb = np.array([v["scores"] for v in b.values()])
    assert np.allclose(sa, sb, atol=2e-3), np.abs(sa - sb).max()
    assert [h["loss"] for h in online.history] == pytest.approx([h["loss"] for h in cached.history], rel=1e-3)
    assert cached.engine["cached_features"] is True

    meta = json.loads((tmp_path / "cached" / "features.json").read_text())
    assert meta["dtype"] == "float16" and meta["protocol_hash"] == ctx.task.protocol_hash
    assert meta["train_views_per_video"] == 1 and meta["feature_dim"] == 512
    from safetensors.torch import load_file

    stored = load_file(str(tmp_path / "cached" / "features.safetensors"))
    assert stored["train"].dtype == torch.float16 and stored["train"].shape == (len(ctx.train_samples), 512)

    # a rerun of the same run reuses the stored features and scores the same
    logs = []
    ctx2 = _ctx("synth_motion_linear_cached", tiny_suite, tmp_path / "cached", cached_overrides, state)
    ctx2.log = logs.append
    (tmp_path / "cached" / "state.pt").unlink()
    again = cached_probe.run(ctx2)
    assert any("reusing cached features" in line for line in logs)
    assert again.metrics == cached.metrics
