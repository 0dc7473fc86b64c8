"""ImageNet ResNet-18 / ResNet-50 applied to video TSN-style (Wang et al., ECCV 2016): every frame of the clip
goes through the 2D network on its own and the pooled per-frame features are averaged over the frames (TSN's
average consensus). The representation of representation bias (RESOUND; SynAPT §4.2).

torchvision's own ``ResNet`` modules, so state-dict keys are torchvision's (``conv1``, ``bn1``, ``layer1-4``),
minus the ImageNet classifier ``fc`` (an ``Identity`` here).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

_CONFIGS = {"resnet18": (BasicBlock, [2, 2, 2, 2], 512), "resnet50": (Bottleneck, [3, 4, 6, 3], 2048)}


class ImageResNetBackbone(ResNet):
    """torchvision ``ResNet`` without its classifier; input (B, C, T, H, W) -> frame-averaged features."""

    layer_names = ["stem", "layer1", "layer2", "layer3", "layer4"]

    def __init__(self, arch: str, bn_eps: float = 1e-5):
        if arch not in _CONFIGS:
            raise ValueError(f"unknown image ResNet {arch!r}; known: {', '.join(_CONFIGS)}")
        block, layers, dim = _CONFIGS[arch]
        super().__init__(block=block, layers=layers)
        self.arch = arch
        self.arch_kwargs = {"bn_eps": float(bn_eps)}
        self.feature_dim = dim
        self.fc = nn.Identity()
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eps = float(bn_eps)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    @staticmethod
    def _frames(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """(B, C, T, H, W) -> (B*T, C, H, W): every frame is an image."""
        if x.ndim == 4:  # a batch of images: one frame each
            return x, x.shape[0], 1
        if x.ndim != 5:
            raise ValueError(f"expected (B, C, T, H, W) clips or (B, C, H, W) images, got shape {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        return x.transpose(1, 2).reshape(b * t, c, h, w), b, t

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, feature_dim): per-frame global average pool, then the mean over frames."""
        return self.forward_layers(x, ["layer4"])["layer4"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)

    def forward_layers(self, x: torch.Tensor, names) -> dict[str, torch.Tensor]:
        """Per frame globally average-pooled activations of the requested layers, averaged over frames."""
        from .video_resnet import _check_names

        wanted = _check_names(names, self.layer_names)
        x, b, t = self._frames(x)
        out = {}
        for name in self.layer_names:
            x = self._stem(x) if name == "stem" else getattr(self, name)(x)
            if name in wanted:
                out[name] = x.mean(dim=(2, 3)).reshape(b, t, -1).mean(dim=1)
                if len(out) == len(wanted):
                    break
        return {n: out[n] for n in names}
