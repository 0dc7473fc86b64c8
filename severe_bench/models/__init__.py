"""Backbones by name: ``create_backbone(name, **kwargs)``, ``list_backbones()``.

Every backbone is an ``nn.Module`` with

* ``feature_dim`` (int) and ``forward_features(x) -> (B, feature_dim)`` for ``x`` of shape (B, C, T, H, W):
  the pooled feature, no classification head;
* ``layer_names`` (R(2+1)D / R3D and the per-frame 2D ResNets: ``stem, layer1..layer4``; ViT: ``blocks.0..blocks.N-1``) and
  ``forward_layers(x, names) -> {name: (B, D)}``, each globally average pooled (for CKA);
* ``arch`` and ``arch_kwargs``: what ``create_backbone`` needs to build the same network again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    family: str  # "cnn" or "vit"
    description: str
    build: Callable[..., nn.Module]
    protocol_inputs: tuple = field(default=())  # (C, T, H, W) inputs of the protocols that use this backbone


def _video_resnet(arch: str):
    def build(**kw):
        from .video_resnet import VideoResNetBackbone

        return VideoResNetBackbone(arch, **kw)

    return build


def _image_resnet(arch: str):
    def build(**kw):
        from .image_resnet import ImageResNetBackbone

        return ImageResNetBackbone(arch, **kw)

    return build


def _vit(arch: str, embed_dim: int, depth: int, num_heads: int):
    def build(**kw):
        from .vit import VideoViT

        return VideoViT(arch, embed_dim=embed_dim, depth=depth, num_heads=num_heads, **kw)

    return build


_CNN_INPUTS = ((3, 32, 112, 112), (3, 16, 112, 112))  # fine-tuning clips (PROTOCOL.md §3); linear eval UCF101 (§4)
_VIT_INPUTS = ((3, 16, 224, 224),)  # PROTOCOL.md §6
_IMAGE_INPUTS = ((3, 8, 224, 224),)  # representation bias: 8 TSN segments of one frame (SynAPT §4.1.1)

BACKBONES: dict[str, BackboneSpec] = {
    "r2plus1d_18": BackboneSpec("r2plus1d_18", "cnn", "R(2+1)D-18 (Tran et al., CVPR 2018), torchvision layout",
                                _video_resnet("r2plus1d_18"), _CNN_INPUTS),
    "r3d_18": BackboneSpec("r3d_18", "cnn", "R3D-18 (Tran et al., CVPR 2018), torchvision layout",
                           _video_resnet("r3d_18"), _CNN_INPUTS),
    "vit_s_16": BackboneSpec("vit_s_16", "vit", "ViT-S/16 on 2x16x16 tubelets, VideoMAE layout (384-d, 12x6 heads)",
                             _vit("vit_s_16", 384, 12, 6), _VIT_INPUTS),
    "vit_b_16": BackboneSpec("vit_b_16", "vit", "ViT-B/16 on 2x16x16 tubelets, VideoMAE layout (768-d, 12x12 heads)",
                             _vit("vit_b_16", 768, 12, 12), _VIT_INPUTS),
    # 2D image models applied frame by frame, features averaged over frames (TSN-style; representation bias)
    "resnet18": BackboneSpec("resnet18", "image", "ResNet-18 (He et al., CVPR 2016) per frame, torchvision layout",
                             _image_resnet("resnet18"), _IMAGE_INPUTS),
    "resnet50": BackboneSpec("resnet50", "image", "ResNet-50 (He et al., CVPR 2016) per frame, torchvision layout",
                             _image_resnet("resnet50"), _IMAGE_INPUTS),
}

EMBED_DIM_TO_VIT = {384: "vit_s_16", 768: "vit_b_16"}


def list_backbones() -> list[str]:
    return sorted(BACKBONES)


def backbone_spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; known backbones: {', '.join(list_backbones())}")
    return BACKBONES[name]


def create_backbone(name: str, **kwargs) -> nn.Module:
    """Build backbone ``name`` with random initialisation; ``kwargs`` are architecture options
    (R(2+1)D/R3D: ``bn_eps``, ``layer4_temporal``; ViT: ``img_size``, ``num_frames``, ``pos_embed``, ``pooling``,
    ``layer_scale``, ``qkv_bias``, ``tubelet_size``, ``norm_eps``, ``fc_norm_eps``, ``drop_path``, ...)."""
    spec = backbone_spec(name)
    try:
        return spec.build(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build backbone {name!r} with {kwargs}: {exc}") from exc


__all__ = ["BACKBONES", "BackboneSpec", "backbone_spec", "create_backbone", "list_backbones", "EMBED_DIM_TO_VIT"]
