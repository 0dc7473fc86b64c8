"""Cached-feature linear probe (protocol ``linear_cached``): the frozen backbone runs once per view, the head
trains on stored features on the device.

What differs from the online ``linear`` protocol, and why it is its own protocol name:

* **Fixed train views.** ``cached.train_views_per_video`` (V) augmented clips per training video are drawn
  once — view ``v`` of sample ``i`` is exactly the clip the online probe draws for item ``i`` in pass ``v``
  (keys (seed, v, i), same transform) — and reused: pass ``p``'s item ``k`` (``clips_per_video`` items per
  video, as online) reads view ``(p * clips_per_video + k // N) mod V``. Same batches, steps and
  learning-rate schedule as online; fewer distinct augmentations.
* **BatchNorm in eval mode** during extraction (features must not depend on the batch).

Features are stored in fp16 with their provenance (``features.safetensors`` + ``features.json`` in the run
folder: checkpoint sha256, protocol hash, video-list hashes, views, seed, feature size, code version); a rerun
of the same run reuses them. With augmentation off (a deterministic clip per video) the cached and online
probes train on the same inputs and agree (tests/test_cached_probe.py).
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ..data.clips import TestClips, TrainClips, collate_ok, collate_views
from ..data.subset import sample_list_hash
from ..errors import ConfigError, SevereError
from ..provenance import code_version, utc_now
from . import distributed
from .context import Outcome, RunContext
from .finetune import engine_record
from .metrics import classification_metrics
from .model import base_lr, build_optimizer, set_lr
from .predictions import classification_predictions
from .schedule import lr_at
from .state import loader_kwargs
from .trainer import PassSampler, Precision, Progress, fit, optimise
from .transforms import build_device_augment, build_test_views, build_train_transform, clip_sampling

FEATURES_FILE, FEATURES_META = "features.safetensors", "features.json"


class ProbeHead(nn.Module):
    """What the probe trains: optional BatchNorm1d(affine=False) (ViT §6), dropout, Linear(D, C)."""

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.0, batchnorm: bool = False):
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False) if batchnorm else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(dim, num_classes)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.norm(f)))


class _ListSampler(Sampler):
    def __init__(self, keys):
        self.keys = list(keys)

    def __len__(self):
        return len(self.keys)

    def __iter__(self):
        return iter(self.keys)


@torch.no_grad()
def _extract(backbone, loader, precision, to_input, progress, views_of=None):
    """Features of every decodable item, in loader order: list of (key info, fp16 feature rows)."""
    out, failed = [], {}
    progress.start_pass(0, len(loader))
    for b in loader:
        failed.update(dict(b["failed"]))
        if b["size"]:
            x = to_input(b["clip"].to(precision.device, non_blocking=True), b.get("aug"))
            with precision.autocast():
                f = backbone.forward_features(precision.input(x)).float()
            out.append((b, f.half()))
        progress.update(b["size"])
    progress.end_pass()
    return out, failed


def _provenance(ctx: RunContext, views: int, dim: int | None = None) -> dict:
    info = ctx.checkpoint.info
    # the protocol that runs (checkpoint overrides included: the official hash does not change with them)
    effective = hashlib.sha256(json.dumps(ctx.task.protocol, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"protocol_hash": ctx.task.protocol_hash, "effective_protocol_sha256": effective,
            "checkpoint_sha256": info.get("sha256"),
            "architecture": info.get("architecture"), "seed": ctx.seed, "train_views_per_video": views,
            "train_list_sha256": sample_list_hash(ctx.train_samples),
            "test_list_sha256": sample_list_hash(ctx.test_samples), "dtype": "float16", "feature_dim": dim}


def extract_features(ctx: RunContext, precision: Precision, views: int) -> dict:
    """Train-view and test-view features (fp16, on the CPU), reusing a stored set with the same provenance."""
    from safetensors.torch import load_file, save_file

    proto = ctx.task.protocol
    meta_path, data_path = ctx.work_dir / FEATURES_META, ctx.work_dir / FEATURES_FILE
    want = _provenance(ctx, views)
    if meta_path.exists() and data_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except ValueError:
            meta = None
        if meta and {k: meta.get(k) for k in want if k != "feature_dim"} == {k: v for k, v in want.items() if k != "feature_dim"}:
            ctx.log(f"  reusing cached features ({data_path})")
            t = load_file(str(data_path))
            return {**{k: t[k] for k in t}, "unreadable": meta.get("unreadable", {}), "test_videos": meta["test_videos"]}

    backbone = ctx.checkpoint.backbone
    backbone.eval()
    to_input = build_device_augment(ctx.normalisation, precision.device)
    n = len(ctx.train_samples)
    batch = max(int(proto["batch_size"]), 1)
    train_ds = TrainClips(ctx.train_samples, ctx.root, clip_sampling(proto, "input"),
                          build_train_transform(proto, ctx.normalisation), 1, ctx.seed, "single", ctx.num_classes)
    keys = [(v, i) for v in range(views) for i in range(n)]
    loader = DataLoader(train_ds, batch_size=batch, sampler=_ListSampler(keys), collate_fn=_collate_keyed,
                        **loader_kwargs(ctx.workers, ctx.device))
    rows, failed = _extract(backbone, loader, precision, to_input, Progress(ctx.log, f"{ctx.task.id} features", 1))
    dim = int(rows[0][1].shape[1]) if rows else int(getattr(backbone, "feature_dim", 0))
    train = torch.zeros(views * n, dim, dtype=torch.float16)
    ok = torch.zeros(views * n, dtype=torch.bool)
    for b, f in rows:
        idx = torch.tensor([v * n + i for v, i in b["keys"]])
        train[idx], ok[idx] = f.cpu(), True
    labels = torch.tensor([int(s.label) for s in ctx.train_samples])

    test = proto["test"]
    test_ds = TestClips(ctx.test_samples, ctx.root, clip_sampling(proto, "test"),
                        int(test["clips"]), build_test_views(proto), "single", ctx.num_classes)
    nviews = int(test["clips"]) * int(test.get("spatial_crops", 1))
    tl = DataLoader(test_ds, batch_size=max(1, math.ceil(batch / nviews)), collate_fn=collate_views,
                    **loader_kwargs(ctx.workers, ctx.device))
    trows, tfailed = _extract(backbone, tl, precision, to_input, Progress(ctx.log, f"{ctx.task.id} test features", 1))
    test_feats, test_labels, test_videos = [], [], []
    for b, f in trows:
        for (lo, hi), video, target in zip(b["spans"], b["videos"], b["targets"]):
            test_feats.append(f[lo:hi].cpu())
            test_labels.append(int(target))
            test_videos.append(video)
    tensors = {"train": train, "train_ok": ok, "train_labels": labels,
               "test": torch.stack(test_feats) if test_feats else torch.zeros(0, nviews, dim, dtype=torch.float16),
               "test_labels": torch.tensor(test_labels, dtype=torch.long)}
    unreadable = {**failed, **tfailed}
    if distributed.rank() == 0:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(data_path))
        meta_path.write_text(json.dumps({**_provenance(ctx, views, dim), "unreadable": unreadable,
                                         "test_videos": test_videos, "code_version": code_version(),
                                         "created_at": utc_now(), "precision": precision.name}, indent=1))
    return {**tensors, "unreadable": unreadable, "test_videos": test_videos}


def _collate_keyed(items):
    batch = collate_ok(items)
    batch["keys"] = [it["key"] for it in items if it["ok"]]
    return batch


class _FeatureBatches:
    """The loader ``trainer.fit`` iterates: batches of row indices into the device-resident feature table,
    in the sampler's (seed, pass) order."""

    def __init__(self, sampler: PassSampler, batch: int, n: int, clips: int, views: int, ok: torch.Tensor):
        self.sampler, self.batch, self.n, self.clips, self.views, self.ok = sampler, batch, n, clips, views, ok

    def __len__(self):
        return math.ceil(len(self.sampler) / self.batch)

    def __iter__(self):
        p = self.sampler.pass_index
        items = np.array([i for _, i in self.sampler])
        view = (p * self.clips + items // self.n) % self.views
        rows = torch.as_tensor(view * self.n + items % self.n)
        for s in range(0, len(rows), self.batch):
            r = rows[s:s + self.batch]
            keep = r[self.ok[r]]
            yield {"failed": [], "size": len(keep), "rows": keep}


def run(ctx: RunContext) -> Outcome:
    proto = ctx.task.protocol
    if proto.get("backbone_mode", "eval") != "eval":
        raise ConfigError(f"task {ctx.task.id}: linear_cached extracts features with BatchNorm in eval mode; "
                          "backbone_mode must be 'eval'")
    views = int((proto.get("cached") or {}).get("train_views_per_video", 0))
    if views < 1:
        raise ConfigError(f"task {ctx.task.id}: protocol linear_cached needs cached.train_views_per_video >= 1")
    if not ctx.train_samples:
        raise SevereError(f"task {ctx.task.id}: the training list is empty")
    precision = Precision(ctx.device, ctx.precision, ctx.compile, channels_last=ctx.task.config.get("track") != "vit")
    precision.prepare(ctx.checkpoint.backbone)
    ctx.checkpoint.backbone.requires_grad_(False)
    feats = extract_features(ctx, precision, views)

    torch.manual_seed(ctx.seed)
    head_spec = proto.get("head", {})
    dim = feats["train"].shape[1]
    head = ProbeHead(dim, ctx.num_classes, float(head_spec.get("dropout", 0)), bool(head_spec.get("batchnorm", False)))
    if head_spec.get("init_std"):  # as the online probe's head (eval_utils.freeze_backbone)
        nn.init.normal_(head.head.weight, std=float(head_spec["init_std"]))
        nn.init.zeros_(head.head.bias)
    head.to(precision.device)
    optim_spec = proto["optimizer"]  # checkpoint overrides are already in ctx.task.protocol
    batch = int(proto["batch_size"])
    sched = proto["schedule"]
    passes, clips = int(sched["passes"]), int(sched.get("clips_per_video", 1))
    optimizer = build_optimizer(head, optim_spec, batch)
    lr0 = base_lr(optim_spec, batch)
    n = len(ctx.train_samples)
    table = feats["train"].to(precision.device)
    labels = feats["train_labels"].to(precision.device)
    sampler = PassSampler(n * clips, ctx.seed)
    loader = _FeatureBatches(sampler, batch, n, clips, views, feats["train_ok"])
    steps_per_pass = len(loader)

    def train_batch(b, p, step):
        set_lr(optimizer, lr_at(sched, lr0, p + step / steps_per_pass))
        rows = b["rows"].to(precision.device, non_blocking=True)
        loss = F.cross_entropy(head(table[rows].float()), labels[rows % n])
        optimise(optimizer, loss)
        return loss, 1

    # every rank trains the same (undistributed) head on the same batches: no per-step agreement needed
    trained = fit(ctx=ctx, model=head, optimizer=optimizer, dataset=None, batch_size=batch, passes=passes,
                  train_batch=train_batch, collate=None, precision=precision, loader=loader, sampler=sampler,
                  collective_steps=False)

    head.eval()
    with torch.no_grad():
        test = feats["test"].to(precision.device).float()
        if len(test) == 0:
            raise SevereError(f"task {ctx.task.id}: no test video could be decoded")
        logits = head(test.flatten(0, 1)).view(test.shape[0], test.shape[1], -1)
        aggregate = proto["test"].get("aggregate", "mean_softmax")
        if aggregate != "mean_softmax":
            raise ConfigError(f"task {ctx.task.id}: linear_cached scores single-label tasks (mean_softmax)")
        scores = logits.softmax(-1).mean(1).cpu().numpy()
    labels_test = feats["test_labels"].numpy()
    unreadable = {**feats["unreadable"], **trained.unreadable}
    metrics = classification_metrics(scores, labels_test, ctx.num_classes)
    preds = classification_predictions(feats["test_videos"], scores, labels_test, False, ctx.num_classes, unreadable)
    return Outcome(metrics=metrics, unreadable=sorted(unreadable), num_train=n, num_test=len(labels_test),
                   predictions=preds, engine={**engine_record(precision, ctx), "cached_features": True},
                   history=trained.history)
