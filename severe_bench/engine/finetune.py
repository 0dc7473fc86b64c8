"""Fine-tuning protocol runner (PROTOCOL.md §3, §5 Charades, §6 ViT): train on random clips, report the
last pass's model on evenly spaced test clips. One runner serves four protocol names:

- ``finetune``: single-label, CNN track (cross-entropy, mean softmax over clips);
- ``finetune_multilabel``: Charades-style (binary cross-entropy, max-pooled sigmoid over views, mAP);
- ``finetune_vit``: VideoMAE recipe (AdamW + layer decay, warm-up cosine, mixup/cutmix, label smoothing);
- ``linear``: linear evaluation (PROTOCOL.md §4): frozen backbone weights, BatchNorm statistics adapting
  (``backbone_mode: train``), new linear head; ``linear_frozen_bn``: the same with the backbone in eval mode.

Every value comes from ``ctx.task.protocol``. The loop itself (precision, loader, progress, resume, DDP) is
``trainer.fit``; this module holds what is particular to these protocols (losses, mixup, test aggregation).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ..data.clips import TestClips, TrainClips, collate_ok, collate_views
from ..errors import SevereError
from .context import Outcome, RunContext
from .metrics import classification_metrics, multilabel_metrics
from .predictions import classification_predictions
from .model import VideoClassifier, base_lr, build_optimizer, scaled_schedule, set_lr
from .schedule import lr_at
from . import distributed
from .state import loader_kwargs
from .trainer import Precision, Progress, fit, optimise, sample_seed
from .transforms import build_device_augment, build_test_views, build_train_transform, clip_sampling


def _mix(clips: torch.Tensor, targets: torch.Tensor, aug: dict, num_classes: int, gen: torch.Generator):
    """Mixup (alpha ``mixup``) or CutMix (alpha ``cutmix``), chosen with equal odds when both are on; labels
    become smoothed soft targets (timm's ``mixup_target``, built on the targets' device). Same box for all
    frames of a clip, as VideoMAE does. timm's ``Mixup`` class itself is not used: it draws from the
    process-wide numpy RNG (a resumed or multi-worker run would differ) and indexes a 4-D image batch."""
    from timm.data.mixup import mixup_target

    smoothing = float(aug.get("label_smoothing", 0.0))
    mixup, cutmix = float(aug.get("mixup", 0) or 0), float(aug.get("cutmix", 0) or 0)
    if (mixup <= 0 and cutmix <= 0) or len(targets) < 2:
        return clips, mixup_target(targets, num_classes, 1.0, smoothing)
    use_cutmix = cutmix > 0 and (mixup <= 0 or torch.rand(1, generator=gen).item() < 0.5)
    alpha = cutmix if use_cutmix else mixup
    lam = float(np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=gen))).beta(alpha, alpha))
    flipped = clips.flip(0)
    if use_cutmix:
        h, w = clips.shape[-2:]
        ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy, cx = torch.randint(0, h, (1,), generator=gen).item(), torch.randint(0, w, (1,), generator=gen).item()
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        clips = clips.clone()
        clips[..., y0:y1, x0:x1] = flipped[..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        clips = lam * clips + (1 - lam) * flipped
    return clips, mixup_target(targets, num_classes, lam, smoothing)


def _loss(logits, target, kind: str) -> torch.Tensor:
    if kind == "cross_entropy":
        return F.cross_entropy(logits, target)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    if kind == "soft_cross_entropy":
        return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()
    raise ValueError(f"unknown loss {kind!r}")


def run(ctx: RunContext) -> Outcome:
    proto = ctx.task.protocol
    multilabel = proto["name"] == "finetune_multilabel"
    label_mode = "multi" if multilabel else "single"
    if not ctx.train_samples:
        raise SevereError(f"task {ctx.task.id}: the training list is empty")
    torch.manual_seed(ctx.seed)

    optim_spec = proto["optimizer"]  # checkpoint overrides are already in ctx.task.protocol
    batch = int(proto["batch_size"])
    sched = scaled_schedule(proto["schedule"], optim_spec, batch)
    passes = int(sched["passes"])
    head = proto.get("head", {})
    model = VideoClassifier(ctx.checkpoint.backbone, ctx.num_classes, float(head.get("dropout", 0)),
                            batchnorm=bool(head.get("batchnorm", False)))
    if proto.get("head", {}).get("drop_path") and hasattr(model.backbone, "set_drop_path"):
        model.backbone.set_drop_path(float(proto["head"]["drop_path"]))
    frozen = bool(proto.get("freeze_backbone", False))
    backbone_mode = proto.get("backbone_mode", "eval" if frozen else "train")
    if backbone_mode not in ("train", "eval"):
        raise SevereError(f"task {ctx.task.id}: backbone_mode must be 'train' or 'eval', got {backbone_mode!r}")
    if frozen:
        model.backbone.requires_grad_(False)
    if head.get("init_std"):  # the reference linear head: N(0, std) weights, zero bias (eval_utils.freeze_backbone)
        torch.nn.init.normal_(model.head.weight, std=float(head["init_std"]))
        torch.nn.init.zeros_(model.head.bias)
    precision = Precision(ctx.device, ctx.precision, ctx.compile, channels_last=ctx.task.config.get("track") != "vit")
    precision.prepare(model)
    forward = precision.compiled(distributed.wrap(model, precision.device))
    optimizer = build_optimizer(model, optim_spec, batch)
    lr0 = base_lr(optim_spec, batch)

    # workers decode, crop and flip on uint8; jitter, normalisation and erasing run batched on the device
    train_ds = TrainClips(ctx.train_samples, ctx.root, clip_sampling(proto, "input"),
                          build_train_transform(proto, ctx.normalisation),
                          int(sched.get("clips_per_video", 1)), ctx.seed, label_mode, ctx.num_classes,
                          clip_targets=proto.get("train_targets") == "clip")
    device_augment = build_device_augment(ctx.normalisation, precision.device, proto)
    steps_per_pass = math.ceil(len(train_ds) / (batch * distributed.world_size()))

    aug = proto.get("train_augment", {})
    loss_kind = proto.get("loss", "cross_entropy")

    def on_pass_start(p: int) -> None:
        if backbone_mode == "eval":
            model.backbone.eval()  # BatchNorm statistics stay those of pre-training (linear_frozen_bn)

    def train_batch(b: dict, p: int, step: int):
        set_lr(optimizer, lr_at(sched, lr0, p + step / steps_per_pass))
        noise = None
        if "erase_boxes" in b["aug"]:  # the erasing noise, drawn from (seed, pass, step, rank): resumes repeat it
            noise = torch.Generator(precision.device)
            noise.manual_seed(sample_seed(ctx.seed, p, step, 101 + distributed.rank()))
        clips = device_augment(b["clip"].to(precision.device, non_blocking=True), b["aug"], noise)
        clips = precision.input(clips)
        target = b["target"].to(precision.device, non_blocking=True)
        if loss_kind == "soft_cross_entropy":
            # mixup/cutmix draws depend only on (seed, pass, step, rank), so a resumed run repeats them
            gen = torch.Generator().manual_seed(sample_seed(ctx.seed, p, step, 1 + distributed.rank()))
            clips, target = _mix(clips, target, aug, ctx.num_classes, gen)
        with precision.autocast():
            logits = forward(clips)
        loss = _loss(logits.float(), target, loss_kind)
        optimise(optimizer, loss)
        return loss, 1

    trained = fit(ctx=ctx, model=model, optimizer=optimizer, dataset=train_ds, batch_size=batch, passes=passes,
                  train_batch=train_batch, collate=collate_ok, precision=precision, on_pass_start=on_pass_start)
    unreadable = trained.unreadable

    if int(proto.get("precise_bn_batches", 0) or 0) > 0:
        _precise_bn(model, forward, train_ds, batch, passes, int(proto["precise_bn_batches"]), ctx, precision,
                    device_augment)
    truncated: dict = {}
    scores, labels, scored, test_failed = _test(model, ctx, proto, label_mode, precision, truncated)
    unreadable_all = {**unreadable, **test_failed}
    if not scored:
        raise SevereError(f"task {ctx.task.id}: no test video could be decoded ({len(test_failed)} unreadable)")
    if not np.isfinite(scores).all():
        bad = scored[int(np.flatnonzero(~np.isfinite(scores).all(1))[0])]
        losses = ", ".join(f"{h['loss']:.4g}" for h in trained.history[-3:] if h.get("loss") is not None)
        raise SevereError(f"task {ctx.task.id}: the trained model gives non-finite scores (first on {bad}; "
                          f"last pass losses: {losses or 'none'}). Either training diverged (weights that grew "
                          "without bound, whatever the loss showed: the lr is too high for this checkpoint or "
                          "input size) or the checkpoint holds non-finite weights (severe checkpoints verify); "
                          "after fixing, rerun with --restart")
    if multilabel:
        metrics = multilabel_metrics(scores, labels)
    else:
        metrics = classification_metrics(scores, labels, ctx.num_classes)
    preds = classification_predictions(scored, scores, labels, multilabel, ctx.num_classes, unreadable_all)
    return Outcome(metrics=metrics, unreadable=sorted(unreadable_all), num_train=len(ctx.train_samples),
                   num_test=len(scored), predictions=preds,
                   engine=engine_record(precision, ctx), history=trained.history, truncated=truncated)


def _precise_bn(model, forward, train_ds, batch: int, passes: int, num_batches: int, ctx: RunContext, precision,
                device_augment) -> None:
    """PySlowFast's precise BatchNorm (``BN.USE_PRECISE_STATS``): after training, the running statistics are
    recomputed as the true average over ``num_batches`` training batches (fvcore ``update_bn_stats``), the
    batches made as in training (same device-side augmentation)."""
    from ..fvcore_nn import fvcore_nn

    update_bn_stats = fvcore_nn("fvcore.nn.precise_bn").update_bn_stats

    train_ds.set_epoch(passes)  # clips not used in training, reproducible from the seed
    loader = DataLoader(train_ds, batch_size=batch, shuffle=True, drop_last=False, collate_fn=collate_ok,
                        generator=torch.Generator().manual_seed(ctx.seed * 100003 + passes),
                        **loader_kwargs(ctx.workers, ctx.device))

    def inputs():
        for b in loader:
            if "clip" in b:
                yield precision.input(device_augment(b["clip"].to(precision.device, non_blocking=True), b["aug"]))

    class _Forward(torch.nn.Module):  # fvcore finds the BN layers on `model`; the forward runs as in training
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            with precision.autocast():
                return forward(x)

    n = min(num_batches, len(loader))
    model.train()
    update_bn_stats(_Forward(), inputs(), num_iters=n)
    ctx.log(f"  precise BatchNorm statistics from {n} training batches")


@torch.no_grad()
def _test(model, ctx: RunContext, proto: dict, label_mode: str, precision: Precision,
          truncated: dict | None = None):
    """All views of a test video are scored together; a loader batch holds enough videos that a forward
    pass sees at least ``batch_size`` views. Under DDP each rank scores every world-th video and the
    scores are gathered (rank order restored by video index). ``truncated`` collects the test videos that
    decode fewer frames than their container declares (scored, and counted in the result)."""
    test = proto["test"]
    ds = TestClips(ctx.test_samples, ctx.root, clip_sampling(proto, "test"), int(test["clips"]),
                   build_test_views(proto), label_mode, ctx.num_classes)
    to_input = build_device_augment(ctx.normalisation, precision.device)
    views = int(test["clips"]) * int(test.get("spatial_crops", 1))
    per_batch = max(1, math.ceil(int(proto["batch_size"]) / views))
    rank, world = distributed.rank(), distributed.world_size()
    mine = list(range(rank, len(ds), world))
    loader = DataLoader(torch.utils.data.Subset(ds, mine), batch_size=per_batch, shuffle=False,
                        collate_fn=collate_views, **loader_kwargs(ctx.workers, ctx.device))
    model.eval()
    aggregate = test.get("aggregate", "mean_softmax")
    rows, failed = [], {}
    progress = Progress(ctx.log, f"{ctx.task.id} test", 1, enabled=rank == 0)
    progress.start_pass(0, len(loader))
    for b in loader:
        failed.update(dict(b["failed"]))
        if truncated is not None:
            truncated.update(dict(b.get("truncated", [])))
        if b["size"]:
            x = precision.input(to_input(b["clip"].to(precision.device, non_blocking=True)))
            with precision.autocast():
                logits = model(x).float()
            for (lo, hi), video, target, index in zip(b["spans"], b["videos"], b["targets"], b["indices"]):
                part = logits[lo:hi]
                if aggregate == "mean_softmax":
                    s = part.softmax(-1).mean(0)
                elif aggregate == "max_sigmoid":
                    s = part.sigmoid().max(0).values
                else:
                    raise ValueError(f"unknown test aggregate {aggregate!r}")
                rows.append((index, video, s.cpu().numpy(), target.numpy()))
        progress.update(b["size"])
    progress.end_pass()
    rows = sorted((r for part in distributed.gather_objects(rows) for r in part), key=lambda r: r[0])
    failed = distributed.merge_dicts(failed)
    if truncated is not None:
        truncated.update(distributed.merge_dicts(dict(truncated)))
    if not rows:
        return np.zeros((0, ctx.num_classes)), np.zeros(0), [], failed
    return np.stack([r[2] for r in rows]), np.stack([r[3] for r in rows]), [r[1] for r in rows], failed


def engine_record(precision: Precision, ctx: RunContext) -> dict:
    """How the run was executed (not protocol values): recorded in the result."""
    return {**precision.record(), "world_size": distributed.world_size(), "workers": ctx.workers}
