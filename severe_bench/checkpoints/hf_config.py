"""Hugging Face model folders: the weights file of a ``save_pretrained`` folder and what its ``config.json`` says.

A folder holds ``config.json`` and ``model.safetensors`` (preferred) or ``pytorch_model.bin``. For VideoMAE
(``model_type: videomae``) the config names the architecture: hidden size, depth, heads and MLP width pick ViT-S
or ViT-B; tubelet, frames, image and patch size, q/v bias and the LayerNorm eps become backbone options. A value
that the backbones cannot represent is refused, naming the field, instead of loading something else.

Pooling: a classification model or a bare encoder must use mean pooling (``use_mean_pooling: true``): with
false, transformers normalises the tokens and takes the first patch token (it has no CLS token), which no
backbone here computes. A pre-training model (``VideoMAEForPreTraining``) always has ``use_mean_pooling: false``
because its encoder keeps a final norm; the protocol (VideoMAE fine-tuning, PROTOCOL.md §6) drops that norm and
mean-pools into a fresh ``fc_norm``, so there the field is not a constraint. Dropout probabilities are training
settings of transformers' own recipe, not of the network, and are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CheckpointError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # transformers' names, preferred first
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
CLASSES = {"VideoMAEForVideoClassification": "classification", "VideoMAEModel": "encoder",
           "VideoMAEForPreTraining": "pretraining"}
# hidden size -> (architecture, depth, heads, MLP width) of the backbones in severe_bench.models
VIT_SHAPES = {384: ("vit_s_16", 12, 6, 1536), 768: ("vit_b_16", 12, 12, 3072)}
FC_NORM_EPS = 1e-5  # VideoMAEForVideoClassification builds fc_norm with nn.LayerNorm's default eps
# VideoMAEConfig's defaults, for fields a config.json leaves out (transformers fills them the same way)
DEFAULTS = {"image_size": 224, "patch_size": 16, "num_channels": 3, "num_frames": 16, "tubelet_size": 2,
            "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072,
            "hidden_act": "gelu", "layer_norm_eps": 1e-12, "qv_bias": True, "use_mean_pooling": True}


@dataclass
class FolderConfig:
    """What a model folder's config.json says about the backbone."""

    path: Path
    architecture: str
    arch_kwargs: dict
    model_class: str | None  # e.g. VideoMAEForVideoClassification (None: not named in the config)
    kind: str  # classification, encoder or pretraining
    raw: dict = field(repr=False, default_factory=dict)


def weights_in_folder(folder: Path) -> Path:
    """The weights file of a transformers model folder."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    for name in SHARD_INDEXES:
        if (folder / name).is_file():
            raise CheckpointError(f"{folder}: sharded weights ({name}) are not supported; save the model as one file "
                                  "(save_pretrained with a max_shard_size larger than the model)")
    present = sorted(p.name for p in folder.iterdir())[:12]
    raise CheckpointError(f"{folder} is a folder without a transformers weights file ({' or '.join(WEIGHT_FILES)}); "
                          f"it holds {present}. Give the checkpoint file itself, or a save_pretrained folder")


def config_beside(weights: Path) -> Path | None:
    """config.json next to a transformers-named weights file (any other file is read on its own)."""
    if weights.name in WEIGHT_FILES and (weights.parent / "config.json").is_file():
        return weights.parent / "config.json"
    return None


def _square(cfg: dict, name: str, where: str) -> int:
    value = cfg.get(name)
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            raise CheckpointError(f"{where}: {name} {value} is not square; the ViT backbones take square frames")
        value = value[0]
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise CheckpointError(f"{where}: {name} must be a positive integer, got {value!r}")
    return value


def _need(cfg: dict, name: str, expected, where: str, why: str) -> None:
    if cfg[name] != expected:
        raise CheckpointError(f"{where}: {name} {cfg.get(name)!r} cannot be represented: {why}")


def parse_config(cfg: dict, where: str) -> FolderConfig:
    """Architecture and backbone options from a transformers VideoMAE config (the dict of config.json)."""
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{where}: config.json must hold a JSON object")
    model_type = cfg.get("model_type")
    if model_type != "videomae":
        raise CheckpointError(f"{where}: model_type {model_type!r} is not supported; only transformers VideoMAE "
                              "folders (model_type: videomae) map onto the backbones here")
    classes = cfg.get("architectures") or []
    known = [c for c in classes if c in CLASSES]
    if classes and not known:
        raise CheckpointError(f"{where}: architectures {classes} names no VideoMAE class this loader knows "
                              f"({', '.join(CLASSES)})")
    model_class = known[0] if known else None
    kind = CLASSES.get(model_class, "classification")
    if "qv_bias" not in cfg and "qkv_bias" in cfg:  # transformers 4 wrote qkv_bias, 5 writes qv_bias
        cfg = {**cfg, "qv_bias": cfg["qkv_bias"]}
    cfg = {**DEFAULTS, **cfg}

    hidden = cfg["hidden_size"]
    if hidden not in VIT_SHAPES:
        sizes = ", ".join(f"{d} ({a})" for d, (a, *_r) in VIT_SHAPES.items())
        raise CheckpointError(f"{where}: hidden_size {hidden!r} is no backbone here (known: {sizes})")
    arch, depth, heads, mlp = VIT_SHAPES[hidden]
    _need(cfg, "num_hidden_layers", depth, where, f"{arch} has {depth} blocks")
    _need(cfg, "num_attention_heads", heads, where, f"{arch} has {heads} heads")
    _need(cfg, "intermediate_size", mlp, where, f"{arch} has an MLP of width {mlp} (ratio 4)")
    _need(cfg, "hidden_act", "gelu", where, "the backbones use exact GELU")
    _need(cfg, "num_channels", 3, where, "the backbones take RGB clips")
    if kind != "pretraining":
        _need(cfg, "use_mean_pooling", True, where, "without mean pooling transformers classifies the first patch "
              "token after a final norm (VideoMAE has no CLS token), which no backbone here computes")

    image, patch = _square(cfg, "image_size", where), _square(cfg, "patch_size", where)
    frames, tubelet = cfg["num_frames"], cfg["tubelet_size"]
    for name, value in (("num_frames", frames), ("tubelet_size", tubelet)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise CheckpointError(f"{where}: {name} must be a positive integer, got {value!r}")
    if image % patch:
        raise CheckpointError(f"{where}: image_size {image} is not divisible by patch_size {patch}")
    if frames % tubelet:
        raise CheckpointError(f"{where}: num_frames {frames} is not divisible by tubelet_size {tubelet}")
    eps = cfg["layer_norm_eps"]
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise CheckpointError(f"{where}: layer_norm_eps must be a positive number, got {eps!r}")
    qv_bias = cfg["qv_bias"]
    if not isinstance(qv_bias, bool):
        raise CheckpointError(f"{where}: qv_bias must be true or false, got {qv_bias!r}")
    kwargs = {"img_size": image, "num_frames": frames, "tubelet_size": tubelet, "patch_size": patch,
              "qkv_bias": qv_bias, "pos_embed": "sincos", "pooling": "mean", "layer_scale": 0.0,
              "norm_eps": float(eps), "fc_norm_eps": FC_NORM_EPS}
    return FolderConfig(Path(where), arch, kwargs, model_class, kind, cfg)


def read_config(path: Path) -> FolderConfig:
    try:
        cfg = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read the model config ({exc})") from None
    return parse_config(cfg, str(path))
