"""Fine-tuning protocol runner (PROTOCOL.md §3, §5 Charades, §6 ViT): train on random clips, report the
last pass's model on evenly spaced test clips. One runner serves four protocol names:

- ``finetune``: single-label, CNN track (cross-entropy, mean softmax over clips);
- ``finetune_multilabel``: Charades-style (binary cross-entropy, max-pooled sigmoid over views, mAP);
- ``finetune_vit``: VideoMAE recipe (AdamW + layer decay, warm-up cosine, mixup/cutmix, label smoothing);
- ``linear``: linear evaluation (PROTOCOL.md §4): frozen backbone weights, BatchNorm statistics adapting
  (``backbone_mode: train``), new linear head; ``linear_frozen_bn``: the same with the backbone in eval mode.

Every value comes from ``ctx.task.protocol``. State is saved after each pass and a rerun resumes from it.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data.clips import TestClips, TrainClips, collate_ok, collate_single
from ..errors import SevereError
from .context import Outcome, RunContext
from .metrics import classification_metrics, multilabel_metrics
from .predictions import classification_predictions
from .model import VideoClassifier, base_lr, build_optimizer, scaled_schedule, set_lr
from .schedule import lr_at
from .state import STATE_FILE, loader_kwargs, resume_state, save_state
from .transforms import build_test_transform, build_train_transform


def _mix(clips: torch.Tensor, targets: torch.Tensor, aug: dict, num_classes: int, gen: torch.Generator):
    """Mixup (alpha ``mixup``) or CutMix (alpha ``cutmix``), chosen with equal odds when both are on; labels
    become smoothed soft targets. Same box for all frames of a clip, as VideoMAE does."""
    smoothing = float(aug.get("label_smoothing", 0.0))
    soft = torch.full((len(targets), num_classes), smoothing / num_classes)
    soft.scatter_(1, targets.view(-1, 1), 1.0 - smoothing + smoothing / num_classes)
    mixup, cutmix = float(aug.get("mixup", 0) or 0), float(aug.get("cutmix", 0) or 0)
    if (mixup <= 0 and cutmix <= 0) or len(targets) < 2:
        return clips, soft
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
    return clips, lam * soft + (1 - lam) * soft.flip(0)


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
    model.to(ctx.device)
    optimizer = build_optimizer(model, optim_spec, batch)
    lr0 = base_lr(optim_spec, batch)

    train_ds = TrainClips(ctx.train_samples, ctx.root, {**proto["input"], "short_video": proto.get("short_video")}, build_train_transform(proto, ctx.normalisation),
                          int(sched.get("clips_per_video", 1)), ctx.seed, label_mode, ctx.num_classes,
                          clip_targets=proto.get("train_targets") == "clip")
    steps_per_pass = math.ceil(len(train_ds) / batch)

    state_path = ctx.work_dir / STATE_FILE
    start_pass, unreadable = resume_state(state_path, model, optimizer, passes, ctx.log)

    aug = proto.get("train_augment", {})
    loss_kind = proto.get("loss", "cross_entropy")
    for p in range(start_pass, passes):
        t0 = time.time()
        train_ds.set_epoch(p)
        # mixup/cutmix draws depend only on (seed, pass), so a resumed run repeats them
        mix_gen = torch.Generator().manual_seed(int(np.random.SeedSequence([ctx.seed, p]).generate_state(1)[0]))
        model.train()
        if backbone_mode == "eval":
            model.backbone.eval()  # BatchNorm statistics stay those of pre-training (linear_frozen_bn)
        loader = DataLoader(train_ds, batch_size=batch, shuffle=True, drop_last=False, collate_fn=collate_ok,
                            generator=torch.Generator().manual_seed(ctx.seed * 100003 + p),
                            **loader_kwargs(ctx.workers, ctx.device))
        losses = []
        for step, b in enumerate(tqdm(loader, desc=f"{ctx.task.id} pass {p + 1}/{passes}", leave=False, disable=None)):
            for video, reason in b["failed"]:
                unreadable.setdefault(video, reason)
            if "clip" not in b:
                continue
            set_lr(optimizer, lr_at(sched, lr0, p + step / steps_per_pass))
            clips, target = b["clip"].to(ctx.device, non_blocking=True), b["target"].to(ctx.device)
            if loss_kind == "soft_cross_entropy":
                clips, target = _mix(clips, target, aug, ctx.num_classes, mix_gen)
            loss = _loss(model(clips), target, loss_kind)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        save_state(state_path, model, optimizer, p + 1, unreadable)
        mean_loss = float(np.mean(losses)) if losses else float("nan")
        ctx.log(f"  pass {p + 1}/{passes}: loss {mean_loss:.4f}  lr {max(g['lr'] for g in optimizer.param_groups):.2e}  "
                f"{time.time() - t0:.1f}s")

    scores, labels, scored, test_failed = _test(model, ctx, proto, label_mode)
    unreadable_all = {**unreadable, **test_failed}
    if not scored:
        raise SevereError(f"task {ctx.task.id}: no test video could be decoded ({len(test_failed)} unreadable)")
    if multilabel:
        metrics = multilabel_metrics(scores, labels)
    else:
        metrics = classification_metrics(scores, labels, ctx.num_classes)
    preds = classification_predictions(scored, scores, labels, multilabel, ctx.num_classes, unreadable_all)
    return Outcome(metrics=metrics, unreadable=sorted(unreadable_all), num_train=len(ctx.train_samples),
                   num_test=len(scored), predictions=preds)


@torch.no_grad()
def _test(model, ctx: RunContext, proto: dict, label_mode: str):
    test = proto["test"]
    ds = TestClips(ctx.test_samples, ctx.root, {**test, "short_video": proto.get("short_video")}, int(test["clips"]), build_test_transform(proto, ctx.normalisation),
                   label_mode, ctx.num_classes)
    loader = DataLoader(ds, batch_size=1, shuffle=False, collate_fn=collate_single,
                        **loader_kwargs(ctx.workers, ctx.device))
    model.eval()
    chunk = max(1, int(proto["batch_size"]))
    aggregate = test.get("aggregate", "mean_softmax")
    scores, labels, videos, failed = [], [], [], {}
    for item in tqdm(loader, desc=f"{ctx.task.id} test", leave=False, disable=None):
        if not item["ok"]:
            failed[item["video"]] = item["reason"]
            continue
        views = item["clip"]
        logits = torch.cat([model(views[i:i + chunk].to(ctx.device)) for i in range(0, len(views), chunk)]).float()
        if aggregate == "mean_softmax":
            s = logits.softmax(-1).mean(0)
        elif aggregate == "max_sigmoid":
            s = logits.sigmoid().max(0).values
        else:
            raise ValueError(f"unknown test aggregate {aggregate!r}")
        scores.append(s.cpu().numpy())
        labels.append(item["target"].numpy())
        videos.append(item["video"])
    if not scores:
        return np.zeros((0, ctx.num_classes)), np.zeros(0), [], failed
    return np.stack(scores), np.stack(labels), videos, failed
