"""R(2+1)D-18 and R3D-18 backbones: torchvision's modules, so state-dict keys are torchvision's, minus the head.

The pre-training head is not part of a backbone (``fc`` is an ``Identity``): evaluation protocols put their own
head on ``forward_features``. Two registry quirks are construction arguments, never patches applied later:

* ``bn_eps``: CtP and Tubelet-Contrast train with BatchNorm eps 1e-3 (pyvrl), torchvision uses 1e-5.
* ``layer4_temporal="dilated"``: TCLR replaces ``layer4[0]``'s first (2+1)D conv by one dilated 3x3x3 conv with
  stride (1, 2, 2) and its downsample by a 1x1x1 conv with stride (1, 2, 2), so layer4 keeps the temporal size.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.video.resnet import (
    BasicBlock,
    BasicStem,
    Conv2Plus1D,
    Conv3DSimple,
    R2Plus1dStem,
    VideoResNet,
)

LAYER4_TEMPORAL = ("stride", "dilated")


class VideoResNetBackbone(VideoResNet):
    """torchvision ``VideoResNet`` without its classifier, with named intermediate layers for CKA."""

    layer_names = ["stem", "layer1", "layer2", "layer3", "layer4"]

    def __init__(self, arch: str, bn_eps: float = 1e-5, layer4_temporal: str = "stride"):
        if arch == "r2plus1d_18":
            super().__init__(block=BasicBlock, conv_makers=[Conv2Plus1D] * 4, layers=[2, 2, 2, 2], stem=R2Plus1dStem)
        elif arch == "r3d_18":
            super().__init__(block=BasicBlock, conv_makers=[Conv3DSimple] * 4, layers=[2, 2, 2, 2], stem=BasicStem)
        else:
            raise ValueError(f"unknown video ResNet {arch!r}")
        if layer4_temporal not in LAYER4_TEMPORAL:
            raise ValueError(f"layer4_temporal must be one of {LAYER4_TEMPORAL}, got {layer4_temporal!r}")
        self.arch = arch
        self.arch_kwargs = {"bn_eps": float(bn_eps), "layer4_temporal": layer4_temporal}
        self.feature_dim = 512
        self.fc = nn.Identity()  # the pre-training head is not part of the backbone
        if layer4_temporal == "dilated":
            self._dilate_layer4()
        for m in self.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.eps = float(bn_eps)

    def _dilate_layer4(self) -> None:
        block = self.layer4[0]
        block.conv1[0] = nn.Conv3d(256, 512, kernel_size=(3, 3, 3), stride=(1, 2, 2), padding=(2, 1, 1),
                                   dilation=(2, 1, 1), bias=False)
        block.downsample[0] = nn.Conv3d(256, 512, kernel_size=(1, 1, 1), stride=(1, 2, 2), bias=False)
        for conv in (block.conv1[0], block.downsample[0]):  # torchvision's own init for convolutions
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, 512): layer4 output, globally average pooled."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)

    def forward_layers(self, x: torch.Tensor, names) -> dict[str, torch.Tensor]:
        """Globally average-pooled (B, C) activations of the requested layers (see ``layer_names``)."""
        wanted = _check_names(names, self.layer_names)
        out = {}
        for name in self.layer_names:
            x = getattr(self, name)(x)
            if name in wanted:
                out[name] = x.mean(dim=(2, 3, 4))
                if len(out) == len(wanted):
                    break
        return {n: out[n] for n in names}


def _check_names(names, available: list[str]) -> set[str]:
    if isinstance(names, str):
        raise TypeError("names must be a list of layer names, not a string")
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(f"unknown layer(s) {unknown}; this backbone has {available}")
    return set(names)
