"""Video ViT in the VideoMAE layout (Tong et al., NeurIPS 2022; ``modeling_finetune.py``).

Parameter names follow VideoMAE so its checkpoints load without renaming: ``patch_embed.proj`` (a Conv3d over
tubelets of 2x16x16), ``pos_embed`` (only when learned), ``blocks.{i}.{norm1,attn.qkv,attn.q_bias,attn.v_bias,
attn.proj,norm2,mlp.fc1,mlp.fc2}`` (plus ``gamma_1/gamma_2`` with layer scale), ``norm`` (CLS pooling) or
``fc_norm`` (mean pooling), and ``cls_token`` when there is one. No classification head.

Position embeddings are either VideoMAE's fixed 1-D sinusoid table over the flattened (t, h, w) token index (not
saved in checkpoints) or learned. An input whose token grid differs from the native one (``num_frames / tubelet``,
``img_size / patch``) gets the fixed table built anew for its own grid, as VideoMAE and transformers do when the
model is configured for that clip size (resampling a sinusoid table is not the same function); only learned
embeddings are interpolated (linear in time, bicubic in space, as VideoMAE's fine-tuning script does for the
spatial part).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

POS_EMBED = ("sincos", "learned")
POOLING = ("mean", "cls")


def sinusoid_table(n_position: int, dim: int) -> torch.Tensor:
    """VideoMAE's ``get_sinusoid_encoding_table``: angle = pos / 10000^(2*(j//2)/dim); sin on even j, cos on odd."""
    pos = torch.arange(n_position, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)[None, :]
    angle = pos / torch.pow(torch.tensor(10000.0, dtype=torch.float64), 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.empty(n_position, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table.float().unsqueeze(0)


def resize_pos_embed(pos: torch.Tensor, old_grid: tuple[int, int, int], new_grid: tuple[int, int, int],
                     extra_tokens: int = 0) -> torch.Tensor:
    """Resample a (1, extra + T*H*W, D) position embedding from ``old_grid`` to ``new_grid`` (T, H, W)."""
    if tuple(old_grid) == tuple(new_grid):
        return pos
    extra, grid = pos[:, :extra_tokens], pos[:, extra_tokens:]
    t0, h0, w0 = old_grid
    t1, h1, w1 = new_grid
    d = grid.shape[-1]
    g = grid.reshape(1, t0, h0, w0, d).permute(0, 4, 1, 2, 3).float()  # 1, D, T, H, W
    if t1 != t0:  # linear along time only
        g = F.interpolate(g, size=(t1, h0, w0), mode="trilinear", align_corners=False)
    if (h1, w1) != (h0, w0):  # bicubic per frame, as VideoMAE's run_class_finetuning.py
        g2 = g.permute(0, 2, 1, 3, 4).reshape(t1, d, h0, w0)
        g2 = F.interpolate(g2, size=(h1, w1), mode="bicubic", align_corners=False)
        g = g2.reshape(1, t1, d, h1, w1).permute(0, 2, 1, 3, 4)
    g = g.permute(0, 2, 3, 4, 1).reshape(1, t1 * h1 * w1, d).to(pos.dtype)
    return torch.cat([extra, g], dim=1)


class DropPath(nn.Module):
    """Stochastic depth per sample (identity when ``p == 0`` or in eval mode)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Attention(nn.Module):
    """Multi-head self-attention with VideoMAE's qkv bias convention (q and v biases, no k bias)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = None
            self.v_bias = None
        self.attn_drop = float(attn_drop)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        bias = None
        if self.q_bias is not None:
            bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, norm_eps: float,
                 layer_scale: float, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        if layer_scale > 0:
            self.gamma_1 = nn.Parameter(layer_scale * torch.ones(dim))
            self.gamma_2 = nn.Parameter(layer_scale * torch.ones(dim))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gamma_1 is None:
            x = x + self.drop_path(self.attn(self.norm1(x)))
            return x + self.drop_path(self.mlp(self.norm2(x)))
        x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, tubelet_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.tubelet_size = tubelet_size
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=(tubelet_size, patch_size, patch_size),
                              stride=(tubelet_size, patch_size, patch_size))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        _, _, t, h, w = x.shape
        if t % self.tubelet_size or h % self.patch_size or w % self.patch_size:
            raise ValueError(f"input {tuple(x.shape)} is not divisible into {self.tubelet_size}x{self.patch_size}x"
                             f"{self.patch_size} tubelets")
        x = self.proj(x)
        grid = tuple(x.shape[2:])
        return x.flatten(2).transpose(1, 2), grid


class VideoViT(nn.Module):
    """ViT over tubelets, VideoMAE layout. ``forward_features`` returns the pooled (B, D) feature."""

    def __init__(self, arch: str, embed_dim: int, depth: int, num_heads: int, mlp_ratio: float = 4.0,
                 patch_size: int = 16, tubelet_size: int = 2, img_size: int = 224, num_frames: int = 16,
                 in_chans: int = 3, qkv_bias: bool = True, pos_embed: str = "sincos", pooling: str = "mean",
                 layer_scale: float = 0.0, norm_eps: float = 1e-6, fc_norm_eps: float | None = None,
                 drop_path: float = 0.0):
        super().__init__()
        if pos_embed not in POS_EMBED:
            raise ValueError(f"pos_embed must be one of {POS_EMBED}, got {pos_embed!r}")
        if pooling not in POOLING:
            raise ValueError(f"pooling must be one of {POOLING}, got {pooling!r}")
        if num_frames % tubelet_size or img_size % patch_size:
            raise ValueError(f"num_frames {num_frames} / img_size {img_size} not divisible by tubelet {tubelet_size} "
                             f"/ patch {patch_size}")
        self.arch = arch
        self.arch_kwargs = {"img_size": img_size, "num_frames": num_frames, "tubelet_size": tubelet_size,
                            "patch_size": patch_size, "qkv_bias": qkv_bias, "pos_embed": pos_embed,
                            "pooling": pooling, "layer_scale": layer_scale, "norm_eps": float(norm_eps),
                            "fc_norm_eps": float(norm_eps if fc_norm_eps is None else fc_norm_eps)}
        self.feature_dim = embed_dim
        self.depth = depth
        self.grid = (num_frames // tubelet_size, img_size // patch_size, img_size // patch_size)
        self.extra_tokens = 1 if pooling == "cls" else 0
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size, tubelet_size)
        if pooling == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        n_pos = math.prod(self.grid) + self.extra_tokens
        if pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, n_pos, embed_dim))
        else:  # fixed: a buffer that is not saved, as in VideoMAE
            self.register_buffer("pos_embed", sinusoid_table(n_pos, embed_dim), persistent=False)
        self._n_pos = n_pos
        self._sincos_cache: dict = {}  # (grid, device) -> fixed table for an input grid other than the native one
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, norm_eps, layer_scale) for _ in range(depth))
        # VideoMAE: mean pooling -> norm is Identity and fc_norm normalises the pooled feature; CLS -> norm on tokens
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps) if pooling == "cls" else nn.Identity()
        # transformers' VideoMAEForVideoClassification keeps LayerNorm's default eps for fc_norm alone
        self.fc_norm = nn.LayerNorm(embed_dim, eps=self.arch_kwargs["fc_norm_eps"]) if pooling == "mean" else None
        self.layer_names = [f"blocks.{i}" for i in range(depth)]
        self._init_weights()
        self.set_drop_path(drop_path)

    def _init_weights(self) -> None:
        if isinstance(self.pos_embed, nn.Parameter):
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.extra_tokens:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def reset_non_persistent_buffers(self) -> None:
        """Recompute buffers that checkpoints do not hold (the fixed position table), e.g. after ``to_empty``."""
        if not isinstance(self.pos_embed, nn.Parameter):
            self.pos_embed = sinusoid_table(self._n_pos, self.feature_dim).to(self.pos_embed.device)
        self._sincos_cache = {}

    def set_drop_path(self, rate: float) -> None:
        """Stochastic depth increasing linearly over the blocks from 0 to ``rate`` (VideoMAE fine-tuning)."""
        for i, blk in enumerate(self.blocks):
            blk.drop_path.p = float(rate) * i / max(self.depth - 1, 1)

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"expected (B, C, T, H, W) input, got shape {tuple(x.shape)}")
        x, grid = self.patch_embed(x)
        pos = self._pos_embed_for(grid, x.device)
        if self.extra_tokens:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        return x + pos.to(dtype=x.dtype)

    def _pos_embed_for(self, grid: tuple[int, int, int], device) -> torch.Tensor:
        """The position embedding of a (T, H, W) token grid: learned ones resampled, the fixed table rebuilt."""
        if tuple(grid) == self.grid:
            return self.pos_embed
        if isinstance(self.pos_embed, nn.Parameter):
            return resize_pos_embed(self.pos_embed, self.grid, grid, self.extra_tokens)
        key = (tuple(grid), str(device))
        if key not in self._sincos_cache:
            if len(self._sincos_cache) >= 4:  # a few clip sizes per run at most; never grow without bound
                self._sincos_cache.clear()
            n = math.prod(grid) + self.extra_tokens
            self._sincos_cache[key] = sinusoid_table(n, self.feature_dim).to(device)
        return self._sincos_cache[key]

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(x)
        if self.fc_norm is not None:
            return self.fc_norm(x[:, self.extra_tokens:].mean(1))
        return x[:, 0]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self._tokens(x)
        for blk in self.blocks:
            x = blk(x)
        return self._pool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)

    def forward_layers(self, x: torch.Tensor, names) -> dict[str, torch.Tensor]:
        """Token-averaged (B, D) output of each requested block (``blocks.i``), CLS token excluded."""
        if isinstance(names, str):
            raise TypeError("names must be a list of layer names, not a string")
        unknown = [n for n in names if n not in self.layer_names]
        if unknown:
            raise ValueError(f"unknown layer(s) {unknown}; this backbone has blocks.0..blocks.{self.depth - 1}")
        wanted = set(names)
        last = max(int(n.split(".")[1]) for n in names) if names else -1
        out = {}
        x = self._tokens(x)
        for i, blk in enumerate(self.blocks[: last + 1]):
            x = blk(x)
            if f"blocks.{i}" in wanted:
                out[f"blocks.{i}"] = x[:, self.extra_tokens:].mean(1)
        return {n: out[n] for n in names}
