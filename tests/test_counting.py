"""Repetition-counting runner: anchor encoding, input windows, count inference, training states, metrics,
and a small end-to-end run on the synthetic counting suite."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from severe_bench.engine.counting import (
    CountingConfig, anchor_targets, cycle_offsets, decode_ratio, estimate_count, init_state, letterbox,
    sample_segment, window_indices,
)
from severe_bench.engine.metrics import counting_metrics
from severe_bench.errors import ConfigError
from severe_bench.registry import get_task

ANCHORS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)


def ucfrep_cfg(**protocol_overrides) -> CountingConfig:
    return CountingConfig.from_protocol(get_task("ucfrep", overrides={"protocol": protocol_overrides}).protocol)


# --- anchors ---------------------------------------------------------------------------------------------

def test_anchor_targets_known_values():
    cls, box = anchor_targets([10, 30, 50, 0, -1], [10, 10, 10, 10, 10], ANCHORS, 0.5)
    assert cls[0].tolist() == [1] * 7  # every anchor within a factor 2 of the truth
    assert np.allclose(box[0], np.log(1 / np.array(ANCHORS)))
    assert cls[1].tolist() == [0, 0, 0, 0, 0, 1, 1]  # 30 vs 15 (IoU 0.5) and 20 (IoU 0.67)
    assert box[1, 6] == pytest.approx(np.log(1.5)) and box[1, 5] == pytest.approx(np.log(2.0))
    assert cls[2].tolist() == [0] * 7 and not box[2].any()  # 5x the window: no anchor covers it
    assert cls[3].tolist() == [-1] * 7 and cls[4].tolist() == [-1] * 7  # unknown length: ignored


@pytest.mark.parametrize("window", [7.0, 20.0, 64.0])
def test_anchor_encoding_round_trip(window):
    truths = window * np.array([0.26, 0.4, 0.55, 0.7, 0.9, 1.0, 1.1, 1.4, 1.8, 2.5, 3.9])
    cls, box = anchor_targets(truths, np.full(len(truths), window), ANCHORS, 0.5)
    assert (cls == 1).any(1).all()
    # a perfect classifier's confidence: IoU on the positive anchors, 0 elsewhere
    ref = window * np.array(ANCHORS)[None, :]
    iou = np.minimum(truths[:, None], ref) / np.maximum(truths[:, None], ref)
    prob = np.where(cls == 1, iou, 0.0)
    # the best anchor's offset stays within the test clamp (+-0.5) from 0.5 e^-0.5 to 2 e^0.5 of the window
    inner = (truths > 0.31 * window) & (truths < 3.2 * window)
    decoded = window * decode_ratio(prob, box, ANCHORS, clamp=0.5)
    assert np.allclose(decoded[inner], truths[inner])
    assert decoded[0] == pytest.approx(window * 0.5 * np.exp(-0.5))  # beyond the clamp: the nearest it can reach
    assert decoded[-1] == pytest.approx(window * 2 * np.exp(0.5))
    # decoding any positive anchor recovers the truth when the offset is not clamped
    first_positive = (cls == 1).astype(float)
    assert np.allclose(window * decode_ratio(first_positive, box, ANCHORS, clamp=10.0), truths)


def test_decode_clamps_offsets():
    prob = np.array([[0, 0, 0, 1.0, 0, 0, 0]])
    assert decode_ratio(prob, np.array([[0, 0, 0, 3.0, 0, 0, 0]]), ANCHORS, 0.5)[0] == pytest.approx(np.exp(0.5))
    assert decode_ratio(prob, np.array([[0, 0, 0, -3.0, 0, 0, 0]]), ANCHORS, 2.0)[0] == pytest.approx(np.exp(-2.0))


# --- labels, windows, states ---------------------------------------------------------------------------

def test_cycle_offsets_follow_the_reference_interpolation():
    nxt, pre = cycle_offsets([0, 10, 20, 30], 0, 30)
    assert nxt[:20].tolist() == [10] * 20 and nxt[20:].tolist() == [-1] * 11  # no cycle after the last
    assert pre[:10].tolist() == [-1] * 10 and pre[10:].tolist() == [10] * 21
    nxt, pre = cycle_offsets([0, 10, 22], 0, 22)  # 10 then 12 frames: regular enough (ratio 1.2)
    assert nxt[5] == 11 and nxt[0] == 10 and pre[16] == 11  # phase-interpolated distances
    nxt, _ = cycle_offsets([0, 10, 30], 0, 30)  # 10 then 20: too irregular, unknown
    assert (nxt == -1).all()


def test_window_indices_cover_cycle_and_context():
    idx = window_indices([100], [10], [10], frames=8, left=1.0, right=2.0)
    assert idx[0].tolist() == [81, 87, 94, 100, 101, 107, 114, 120]
    idx = window_indices([5], [10], [3], frames=32, left=1.0, right=2.0)
    assert idx[0, 0] == -14 and idx[0, 15] == 5 and idx[0, 16] == 6 and idx[0, 31] == 11
    assert (np.diff(idx[0]) >= 0).all()


def test_training_states_and_segments_stay_inside():
    rng = np.random.default_rng(0)
    scales = ucfrep_cfg().scale_grid()
    for _ in range(500):
        L = int(rng.integers(20, 300))
        m, a = init_state(rng, L, float(rng.integers(0, 40)), float(rng.uniform(4, 40)), scales)
        assert 0 <= m and m + a < L and a >= 1
    bounds = [11, 30, 52, 70, 95, 120]
    for _ in range(200):
        begin, end, cycle = sample_segment(rng, bounds, 11, 120, max_frames=60)
        assert 11 <= begin < end <= 120 and end - begin + 1 <= 60
        assert 18 <= cycle <= 25


def test_letterbox_keeps_the_whole_frame():
    frames = np.full((3, 240, 320, 3), 200, dtype=np.uint8)
    out = letterbox(frames, 64)
    assert out.shape == (3, 3, 64, 64) and out.dtype == torch.uint8
    assert (out[:, :, :8] == 0).all() and (out[:, :, -8:] == 0).all()  # 48 rows of picture, padded
    assert (out[:, :, 9:55] == 200).all()


def test_config_rejects_inconsistent_values():
    with pytest.raises(ConfigError, match="merge.iters"):
        ucfrep_cfg(test={"merge": {"levels": 4}})
    with pytest.raises(ConfigError, match="coarse_anchor"):
        ucfrep_cfg(test={"coarse_anchor": 1.1})
    cfg = ucfrep_cfg()
    assert cfg.anchors == ANCHORS and (cfg.context_left, cfg.context_right) == (1.0, 2.0)
    assert cfg.scale_grid()[0] == pytest.approx(0.03) and cfg.scale_grid()[-1] == pytest.approx(0.35)


# --- count inference -----------------------------------------------------------------------------------

def oracle(period):
    """The ideal network for a sequence whose cycle length at frame t is ``period(t)``: IoU-like
    confidence on the anchors that cover the truth, exact offsets."""
    def predict(m, a, b):
        m = np.asarray(m)
        out = []
        for t, w in ((period(m), np.asarray(a, float)), (period(m + 1), np.asarray(b, float))):
            cls, box = anchor_targets(t, w, ANCHORS, 0.5)
            ref = w[:, None] * np.array(ANCHORS)
            prob = np.where(cls == 1, np.minimum(t[:, None], ref) / np.maximum(t[:, None], ref), 0.0)
            out += [prob, box]
        return tuple(out)
    return predict


@pytest.mark.parametrize("length,cycle", [(300, 20), (240, 7), (600, 45), (90, 9)])
def test_count_of_a_sequence_with_known_period(length, cycle):
    est = estimate_count(oracle(lambda t: np.full(np.shape(t), float(cycle))), length, ucfrep_cfg())
    assert est["count"] == round(length / cycle)
    assert est["cycle"] == pytest.approx(cycle, abs=1)
    assert est["used_positions"] > 0


def test_count_follows_a_change_of_tempo():
    # 150 frames at period 10 then 150 frames at period 20: 15 + 7.5 cycles
    est = estimate_count(oracle(lambda t: np.where(np.asarray(t) < 150, 10.0, 20.0)), 300, ucfrep_cfg())
    assert abs(est["count"] - 22.5) <= 1.5


def test_count_with_an_uninformative_network_stays_finite():
    def flat(m, a, b):
        n = len(np.asarray(m))
        return np.full((n, 7), 0.5), np.zeros((n, 7)), np.full((n, 7), 0.5), np.zeros((n, 7))
    est = estimate_count(flat, 200, ucfrep_cfg())
    assert np.isfinite(est["count"]) and 1 <= est["count"] <= 200 / 4


# --- metrics ---------------------------------------------------------------------------------------------

def test_counting_metrics_formulas():
    m = counting_metrics([4, 7, 10, 2], [5, 5, 10, 4])
    assert m["counting_error"] == pytest.approx((1 / 5 + 2 / 5 + 0 + 2 / 4) / 4)
    assert m["obo_accuracy"] == pytest.approx(2 / 4)  # |diff| 1 and 0 count, 2 and 2 do not


# --- end to end on the synthetic counting suite ----------------------------------------------------------

# Smoke-profile values plus reductions that keep a CPU run short: fewer tracking steps per batch, a coarser
# scale grid and a shallower coarse-to-fine search (proposed for the smoke profile), and 32-px frames.
CPU_SMOKE = {"train_tracking": {"steps": 2}, "scales": {"num": 6},
             "test": {"refine_iters": 1, "merge": {"levels": 3, "iters": [1, 1]}}}
CPU_FRAMES = {"input": {"crop": 32}}


@pytest.fixture(scope="module")
def synth_count_root(tmp_path_factory):
    from severe_bench.synth.suite import generate_suite

    out = tmp_path_factory.mktemp("synth")
    generate_suite(out, scale="tiny")
    return out / "synth_count"


def _context(root, work_dir, broken: bool = True):
    from dataclasses import replace

    from severe_bench import registry
    from severe_bench.checkpoints import load_checkpoint
    from severe_bench.engine.context import RunContext

    task = get_task("synth_count", profile="smoke", overrides={"protocol": {**CPU_SMOKE, **CPU_FRAMES}})
    train, test = registry.read_split(task, root, "train"), registry.read_split(task, root, "test")
    if broken:  # a video that cannot be decoded is reported and skipped, in training and in testing
        bad = root / "UCF-101" / "Broken" / "v_Broken_g01_c01.avi"
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_bytes(b"not a video" * 100)
        rel = bad.relative_to(root).as_posix()
        train, test = train + [replace(train[0], video=rel)], test + [replace(test[0], video=rel)]
    logs = []
    ctx = RunContext(task=task, root=root, train_samples=train, test_samples=test, num_classes=None,
                     checkpoint=load_checkpoint("scratch", count_flops=False),
                     normalisation=task.protocol["normalisation"], seed=0, device=torch.device("cpu"),
                     work_dir=work_dir, workers=1, log=logs.append)
    return ctx, logs


def test_run_end_to_end_and_resume(synth_count_root, tmp_path):
    from severe_bench.engine import counting

    torch.manual_seed(0)
    ctx, logs = _context(synth_count_root, tmp_path)
    out = counting.run(ctx)
    readable_test = [s for s in ctx.test_samples if "Broken" not in s.video]
    assert out.unreadable == ["UCF-101/Broken/v_Broken_g01_c01.avi"]
    assert out.num_test == out.metrics["num_scored"] == len(readable_test)
    per_video = out.predictions["videos"]
    assert out.predictions["kind"] == "counting" and set(per_video) == {s.video for s in readable_test}
    assert list(out.predictions["unreadable"]) == out.unreadable
    preds = np.array([per_video[s.video]["pred"] for s in readable_test])
    gts = np.array([s.label for s in readable_test])
    assert [per_video[s.video]["gt"] for s in readable_test] == gts.tolist()
    assert (preds == np.round(preds)).all() and (preds >= 0).all()
    assert out.metrics["counting_error"] == pytest.approx(np.mean(np.abs(preds - gts) / gts))
    assert out.metrics["obo_accuracy"] == pytest.approx(np.mean(np.abs(preds - gts) <= 1))
    assert sum("pass" in line and "loss" in line for line in logs) == 2

    state = torch.load(tmp_path / "state.pt", weights_only=True)
    assert state["passes_done"] == 2 and list(state["unreadable"]) == ["UCF-101/Broken/v_Broken_g01_c01.avi"]

    # a rerun finds the finished training state, skips training and scores the same model again
    ctx2, logs2 = _context(synth_count_root, tmp_path)
    again = counting.run(ctx2)
    assert any("resuming from pass 2/2" in line for line in logs2)
    assert not any("loss" in line for line in logs2)
    assert {v: p["pred"] for v, p in again.predictions["videos"].items()} == {v: p["pred"] for v, p in per_video.items()}
    assert again.unreadable == out.unreadable


_DDP_TRACKING = textwrap.dedent("""
    import json, sys
    from datetime import timedelta
    import numpy as np
    import torch
    from severe_bench.checkpoints import load_checkpoint
    from severe_bench.engine import distributed
    from severe_bench.engine.counting import CountingConfig, CountingNet, collate_segments, train_batch
    from severe_bench.engine.transforms import norm_kwargs
    from severe_bench.registry import get_task
    from severe_bench.video.transforms import _ToModelInput

    # a short collective timeout: a rank left waiting fails the run within seconds instead of hanging
    torch.distributed.init_process_group("gloo", timeout=timedelta(seconds=20))
    rank, cpu = distributed.rank(), torch.device("cpu")
    task = get_task("synth_count", profile="smoke",
                    overrides={"protocol": {"input": {"crop": 32}, "train_tracking": {"steps": 4},
                                            "min_cycle_frames": 1e-6}})  # no restart: a short one must finish
    cfg = CountingConfig.from_protocol(task.protocol)
    torch.manual_seed(0)
    model = CountingNet(load_checkpoint("scratch", count_flops=False).backbone, len(cfg.anchors))
    forward = distributed.wrap(model, cpu)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    norm = _ToModelInput(**norm_kwargs(task.protocol["normalisation"]), device=cpu)
    # rank 0 tracks a 120-frame segment (>= 5 steps to its end: all 4 steps), rank 1 a 3-frame one (one frame
    # a step: on its own it finishes after 3)
    L, cycle = (120, 12) if rank == 0 else (3, 2)
    t = np.arange(L)
    frames = torch.randint(0, 256, (L, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(rank))
    batch = collate_segments([{"ok": True, "video": f"v{rank}", "frames": frames, "next": torch.as_tensor(cycle - 1 - t % cycle),
                               "pre": torch.as_tensor(t % cycle), "fallback": float(cycle)}])
    losses = train_batch(model, opt, batch, cfg, np.random.default_rng(rank), norm, cpu, forward=forward)
    with open(f"{sys.argv[1]}/rank{rank}.json", "w") as f:
        params = float(sum(p.detach().double().sum() for p in model.parameters()))
        json.dump({"steps": len(losses), "params": params}, f)
    distributed.shutdown()
""")


def test_ddp_ranks_track_a_batch_for_the_same_number_of_steps(tmp_path, torchrun):
    """A rank whose segments finish early keeps stepping with the others: each step is a gradient all-reduce."""
    import json

    torchrun(_DDP_TRACKING, tmp_path)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["steps"] == r1["steps"] == 4
    assert r0["params"] == r1["params"]


def test_a_truncated_test_video_is_scored_and_counted(tmp_path):
    """A UCFRep test video cut short (its header still declares every frame): the span is read from the frames
    there are and the item says why it looks truncated (the runner counts it in the result)."""
    from severe_bench.data.sample import Sample
    from severe_bench.engine.counting import FIRST_FRAME_NUMBER, SpanDataset
    from severe_bench.synth.encode import write_video

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(120, 32, 48, 3), dtype=np.uint8)
    meta = {"start_frame": FIRST_FRAME_NUMBER, "end_frame": FIRST_FRAME_NUMBER + 99}
    for name, cut in (("whole.avi", 1.0), ("cut.avi", 0.6)):
        path = write_video(tmp_path / name, frames, 25, codec="mpeg4")
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * cut)])
    ds = SpanDataset([Sample(video=n, label=3, id=n, meta=meta) for n in ("whole.avi", "cut.avi")], tmp_path, 32)
    whole, cut = ds[0], ds[1]
    assert whole["ok"] and whole["truncated"] is None and whole["frames"].shape == (100, 3, 32, 32)
    assert cut["ok"] and "frames its container declares" in cut["truncated"] and cut["frames"].shape[0] == 100
