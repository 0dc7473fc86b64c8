"""Backbone + fresh classification head, and the optimiser with its parameter groups."""

from __future__ import annotations

import re

import torch
from torch import nn


class VideoClassifier(nn.Module):
    """The pre-training head is gone (the checkpoint loader drops it); a fresh Linear(D, C) goes on top."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.0, batchnorm: bool = False):
        super().__init__()
        self.backbone = backbone
        # ViT linear probe (MAE/VideoMAE): BatchNorm1d without affine parameters in front of the linear layer
        self.norm = nn.BatchNorm1d(backbone.feature_dim, affine=False) if batchnorm else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(backbone.feature_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.norm(self.backbone.forward_features(x))))

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's layer groups (for ``param_groups_layer_decay``), VideoMAE's layer ids: the embeddings are
        layer 0, block i is layer i + 1, everything after the blocks (norms, head) the last layer."""
        return {"stem": r"^backbone\.(?:cls_token|pos_embed|patch_embed)", "blocks": r"^backbone\.blocks\.(\d+)"}


_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")
NO_WEIGHT_DECAY = ("*pos_embed*", "*cls_token*")  # VideoMAE's model.no_weight_decay(); 1-D params too


def build_optimizer(model: nn.Module, spec: dict, batch_size: int) -> torch.optim.Optimizer:
    """Adam / SGD / AdamW from the protocol values; AdamW gets VideoMAE's layer decay and no decay on
    biases, norms and embeddings (timm's ``param_groups_layer_decay`` with ``VideoClassifier.group_matcher``).
    Each group's ``lr_scale`` multiplies the scheduled learning rate."""
    name = spec["name"].lower()
    lr = base_lr(spec, batch_size)
    wd = float(spec.get("weight_decay", 0.0))
    if name == "adam":
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr_scale": 1.0}]
        return torch.optim.Adam(groups, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(_sgd_groups(model, wd, spec.get("bn_weight_decay")), lr=lr,
                               momentum=float(spec.get("momentum", 0.9)), nesterov=bool(spec.get("nesterov", False)),
                               dampening=0.0)
    if name == "adamw":
        from timm.optim import param_groups_layer_decay, param_groups_weight_decay

        trainable_blocks = any(_BLOCK.search(n) for n, p in model.named_parameters() if p.requires_grad)
        if trainable_blocks and hasattr(model, "group_matcher"):
            groups = param_groups_layer_decay(model, weight_decay=wd, no_weight_decay_list=NO_WEIGHT_DECAY,
                                              layer_decay=float(spec.get("layer_decay", 1.0)))
        else:  # a head alone (probes): one layer, nothing to decay
            groups = [{**g, "lr_scale": 1.0} for g in param_groups_weight_decay(model, wd,
                                                                                 no_weight_decay_list=NO_WEIGHT_DECAY)]
        betas = tuple(spec.get("betas", (0.9, 0.999)))
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=betas)
    raise ValueError(f"unknown optimizer {name!r}")


def _sgd_groups(model: nn.Module, wd: float, bn_wd) -> list[dict]:
    """PySlowFast's groups: BatchNorm parameters at ``bn_weight_decay`` (its BN.WEIGHT_DECAY, 0), the rest at
    ``weight_decay``; without ``bn_weight_decay`` every parameter gets ``weight_decay``."""
    if bn_wd is None:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr_scale": 1.0, "weight_decay": wd}]
    bn, rest = [], []
    for m in model.modules():
        is_bn = isinstance(m, nn.modules.batchnorm._NormBase)
        for p in m.parameters(recurse=False):
            if p.requires_grad:
                (bn if is_bn else rest).append(p)
    groups = [{"params": rest, "lr_scale": 1.0, "weight_decay": wd},
              {"params": bn, "lr_scale": 1.0, "weight_decay": float(bn_wd)}]
    return [g for g in groups if g["params"]]


def base_lr(spec: dict, batch_size: int) -> float:
    """``lr`` as given, or VideoMAE's ``base_lr * batch / lr_scale_batch``."""
    if "lr" in spec:
        return float(spec["lr"])
    return float(spec["base_lr"]) * batch_size / float(spec.get("lr_scale_batch", 256))


def scaled_schedule(schedule: dict, spec: dict, batch_size: int) -> dict:
    """With a ``base_lr`` (VideoMAE's rule), the schedule's ``min_lr`` and ``warmup_start_lr`` scale with the
    batch like the lr itself (run_class_finetuning.py scales lr, min_lr and warmup_lr by batch / 256)."""
    if "lr" in spec or "base_lr" not in spec:
        return schedule
    factor = batch_size / float(spec.get("lr_scale_batch", 256))
    return {**schedule, **{k: float(schedule[k]) * factor for k in ("min_lr", "warmup_start_lr") if k in schedule}}


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
