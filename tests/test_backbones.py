"""Backbones by name: torchvision equivalence, the TCLR and pyvrl variants, and the VideoMAE ViT against a
transcription of VideoMAE's own forward pass (modeling_finetune.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video import r2plus1d_18, r3d_18

from severe_bench.errors import ConfigError
from severe_bench.models import create_backbone, list_backbones
from severe_bench.models.vit import resize_pos_embed, sinusoid_table

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

X_CNN = torch.randn(2, 3, 4, 16, 16, generator=torch.Generator().manual_seed(0))  # R(2+1)D forwards are costly on CPU
X_VIT = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))


def test_list_and_unknown():
    assert list_backbones() == ["r2plus1d_18", "r3d_18", "resnet18", "resnet50", "vit_b_16", "vit_s_16"]
    with pytest.raises(ConfigError, match="unknown backbone 'resnet34'"):
        create_backbone("resnet34")
    with pytest.raises(ConfigError, match="layer4_temporal"):
        create_backbone("r2plus1d_18", layer4_temporal="sideways")


@pytest.mark.parametrize("arch,tv", [("r2plus1d_18", r2plus1d_18), ("r3d_18", r3d_18)])
def test_video_resnet_is_torchvision_without_head(arch, tv):
    ours = create_backbone(arch).eval()
    ref = tv().eval()
    sd = ours.state_dict()
    assert set(ref.state_dict()) - set(sd) == {"fc.weight", "fc.bias"}
    ref.load_state_dict({**sd, "fc.weight": ref.fc.weight, "fc.bias": ref.fc.bias})
    ref.fc = nn.Identity()
    with torch.no_grad():
        feats = ours.forward_features(X_CNN)
        assert feats.shape == (2, ours.feature_dim) == (2, 512)
        assert torch.equal(feats, ref(X_CNN))
        layers = ours.forward_layers(X_CNN, ours.layer_names)
    assert list(layers) == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert [v.shape[1] for v in layers.values()] == [64, 64, 128, 256, 512]
    torch.testing.assert_close(layers["layer4"], feats)  # global average pooling of layer4 is the feature
    with pytest.raises(ValueError, match="unknown layer"):
        ours.forward_layers(X_CNN, ["layer5"])


def test_bn_eps_applies_to_every_batchnorm():
    m = create_backbone("r2plus1d_18", bn_eps=1e-3)
    eps = {mod.eps for mod in m.modules() if isinstance(mod, nn.BatchNorm3d)}
    assert eps == {1e-3}


def test_tclr_layer4_matches_tclr_source_and_keeps_time():
    """TCLR builds torchvision's R(2+1)D-18 and replaces layer4[0]'s first conv and downsample (model.py)."""
    ours = create_backbone("r2plus1d_18", layer4_temporal="dilated").eval()
    ref = r2plus1d_18()
    ref.layer4[0].conv1[0] = nn.Conv3d(256, 512, kernel_size=(3, 3, 3), stride=(1, 2, 2), padding=(2, 1, 1),
                                       dilation=(2, 1, 1), bias=False)
    ref.layer4[0].downsample[0] = nn.Conv3d(256, 512, kernel_size=(1, 1, 1), stride=(1, 2, 2), bias=False)
    ref.fc = nn.Identity()
    ref.load_state_dict(ours.state_dict())
    ref.eval()
    assert tuple(ours.state_dict()["layer4.0.conv1.0.weight"].shape) == (512, 256, 3, 3, 3)
    seen = {}
    ours.layer3.register_forward_hook(lambda m, i, o: seen.__setitem__("layer3", o.shape))
    ours.layer4.register_forward_hook(lambda m, i, o: seen.__setitem__("layer4", o.shape))
    x = X_CNN[:1].repeat(1, 1, 2, 1, 1)  # 8 frames: layer3 keeps 2 time steps
    with torch.no_grad():
        assert torch.equal(ours.forward_features(x), ref(x))
    assert seen["layer3"][2] == seen["layer4"][2] == 2  # no temporal stride in layer4


# ---- VideoMAE transcription (modeling_finetune.py) used as the reference for the ViT --------------------------

def videomae_sinusoid(n_position, d_hid):
    def angles(pos):
        return [pos / np.power(10000, 2 * (j // 2) / d_hid) for j in range(d_hid)]
    table = np.array([angles(p) for p in range(n_position)])
    table[:, 0::2] = np.sin(table[:, 0::2])
    table[:, 1::2] = np.cos(table[:, 1::2])
    return torch.tensor(table, dtype=torch.float).unsqueeze(0)


def videomae_forward_features(sd: dict, x: torch.Tensor, num_heads: int, depth: int, pos: torch.Tensor) -> torch.Tensor:
    """VisionTransformer.forward_features of VideoMAE with use_mean_pooling=True, written from its source."""
    x = F.conv3d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=(2, 16, 16))
    x = x.flatten(2).transpose(1, 2)
    x = x + pos
    for i in range(depth):
        p = f"blocks.{i}."
        ln = lambda t, n: F.layer_norm(t, (t.shape[-1],), sd[p + n + ".weight"], sd[p + n + ".bias"], eps=1e-6)
        h = ln(x, "norm1")
        b, n, c = h.shape
        qkv_bias = torch.cat((sd[p + "attn.q_bias"], torch.zeros_like(sd[p + "attn.v_bias"]), sd[p + "attn.v_bias"]))
        qkv = F.linear(h, sd[p + "attn.qkv.weight"], qkv_bias).reshape(b, n, 3, num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q = q * (c // num_heads) ** -0.5
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        h = (attn @ v).transpose(1, 2).reshape(b, n, -1)
        x = x + F.linear(h, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        h = ln(x, "norm2")
        h = F.linear(F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])),
                     sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"])
        x = x + h
    return F.layer_norm(x.mean(1), (x.shape[-1],), sd["fc_norm.weight"], sd["fc_norm.bias"], eps=1e-6)


def _randomise(model: nn.Module, seed: int) -> None:
    """Non-trivial values everywhere (LayerNorm affines, q/v biases), so every parameter takes part."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            base = 1.0 if "norm" in name and name.endswith("weight") else 0.0
            p.copy_(base + 0.05 * torch.randn(p.shape, generator=g))


def test_sinusoid_table_matches_videomae():
    torch.testing.assert_close(sinusoid_table(50, 24), videomae_sinusoid(50, 24))


@pytest.fixture(scope="module")
def vit_s_small():
    model = create_backbone("vit_s_16", img_size=32, num_frames=4).eval()  # native grid 2x2x2, VideoMAE's table there
    _randomise(model, 0)
    return model


def test_vit_matches_videomae_forward(vit_s_small):
    model = vit_s_small
    sd = model.state_dict()
    assert "pos_embed" not in sd and "fc_norm.weight" in sd and "norm.weight" not in sd  # VideoMAE mean-pool layout
    with torch.no_grad():
        ours = model.forward_features(X_VIT)
        ref = videomae_forward_features(sd, X_VIT, 6, 12, videomae_sinusoid(8, model.feature_dim))
    assert ours.shape == (2, 384)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch,dim,params", [("vit_s_16", 384, 21_879_936), ("vit_b_16", 768, 86_227_200)])
def test_vit_sizes(arch, dim, params):
    with torch.device("meta"):  # shapes only
        m = create_backbone(arch)
    assert m.feature_dim == dim and len(m.blocks) == 12
    assert sum(p.numel() for p in m.parameters()) == params  # VideoMAE's ViT-S/B without head
    assert tuple(m.patch_embed.proj.weight.shape) == (dim, 3, 2, 16, 16)


def test_vit_layers_and_pooling_variants(vit_s_small):
    m = vit_s_small
    assert m.layer_names == [f"blocks.{i}" for i in range(12)]
    with torch.no_grad():
        feats = m.forward_features(X_VIT)
        layers = m.forward_layers(X_VIT, ["blocks.0", "blocks.11"])
    assert list(layers) == ["blocks.0", "blocks.11"] and layers["blocks.11"].shape == (2, 384)
    torch.testing.assert_close(m.fc_norm(layers["blocks.11"]), feats)
    # native 16x224x224: a 4x32x32 clip resamples the learned position embedding
    cls = create_backbone("vit_s_16", pooling="cls", pos_embed="learned", layer_scale=0.1).eval()
    keys = set(cls.state_dict())
    assert {"cls_token", "pos_embed", "norm.weight", "blocks.0.gamma_1"} <= keys and "fc_norm.weight" not in keys
    assert cls.pos_embed.shape == (1, 1 + 8 * 14 * 14, 384)
    with torch.no_grad():
        out = cls.forward_features(X_VIT)
        tokens = cls._tokens(X_VIT)
        for blk in cls.blocks:
            tokens = blk(tokens)
    torch.testing.assert_close(out, cls.norm(tokens)[:, 0])


def test_fixed_table_is_rebuilt_for_an_off_grid_clip():
    """16x224 native ViT fed an 8x112 clip == the same weights in a ViT built for 8x112 (VideoMAE and transformers
    build the sin-cos table for the grid they are configured for; resampling it is a different function)."""
    native = create_backbone("vit_s_16").eval()
    _randomise(native, 3)
    small = create_backbone("vit_s_16", img_size=112, num_frames=8).eval()
    small.load_state_dict(native.state_dict())
    x = torch.randn(1, 3, 8, 112, 112, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        off_grid = native.forward_features(x)
        assert torch.equal(off_grid, small.forward_features(x))
        assert torch.equal(native.forward_features(x), off_grid)  # the cached table gives the same again
        layers = native.forward_layers(x, ["blocks.11"])
    torch.testing.assert_close(native.fc_norm(layers["blocks.11"]), off_grid)
    # the old behaviour (resampling the 8x14x14 table) would add something else to the tokens
    resampled = resize_pos_embed(native.pos_embed, native.grid, (4, 7, 7))
    assert (resampled - sinusoid_table(4 * 7 * 7, 384)).abs().max() > 0.1
    # learned embeddings are still resampled (there is nothing to rebuild them from)
    learned = create_backbone("vit_s_16", pos_embed="learned", img_size=32, num_frames=4)
    torch.testing.assert_close(learned._pos_embed_for((1, 2, 2), "cpu"),
                               resize_pos_embed(learned.pos_embed, (2, 2, 2), (1, 2, 2)))


def test_pos_embed_resampling():
    pos = torch.randn(1, 1 + 8 * 4 * 4, 16)
    assert resize_pos_embed(pos, (8, 4, 4), (8, 4, 4), 1) is pos
    out = resize_pos_embed(pos, (8, 4, 4), (2, 7, 7), 1)
    assert out.shape == (1, 1 + 2 * 7 * 7, 16)
    torch.testing.assert_close(out[:, :1], pos[:, :1])  # the CLS entry is kept as is
    const = torch.ones(1, 8 * 4 * 4, 16) * 3.0  # a constant field stays constant under resampling
    torch.testing.assert_close(resize_pos_embed(const, (8, 4, 4), (4, 6, 6)), torch.full((1, 4 * 36, 16), 3.0))


def test_drop_path_schedule_and_eval_identity(vit_s_small):
    m = vit_s_small
    with torch.no_grad():
        before = m.forward_features(X_VIT)
        m.set_drop_path(0.1)
        rates = [blk.drop_path.p for blk in m.blocks]
        assert rates[0] == 0.0 and math.isclose(rates[-1], 0.1) and rates == sorted(rates)
        assert torch.equal(m.forward_features(X_VIT), before)  # stochastic depth is off in eval mode
        m.train()
        assert not torch.equal(m.forward_features(X_VIT), before)
    m.set_drop_path(0.0)
    m.eval()
