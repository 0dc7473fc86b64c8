"""Every registry method's real key layout and wrapping loads exactly and computes what the source network does.

Each writer below rebuilds the module tree of the method's own code (wrappers, key encoders, projection heads,
audio networks, decoders, DataParallel prefixes) and the container its training script saves (optimizer state,
argparse.Namespace, numpy scalars, config strings), fills it with random tensors of the true shapes, and records
the features that the source backbone computes on a small clip. Loading the file must leave no backbone key
missing and give the same features. Wrong prefixes, malicious pickles and foreign globals must fail loudly.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torchvision.models import resnet
from torchvision.models.video import r2plus1d_18

from severe_bench.checkpoints import flops_and_params, load_checkpoint, load_registry
from severe_bench.checkpoints.flops import count_by_operator
from severe_bench.cli.checkpoints_cmd import checkpoints as checkpoints_cli
from severe_bench.errors import CheckpointError, ConfigError
from severe_bench.models import create_backbone
from severe_bench.models.vit import Block

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

REG = load_registry()
X = torch.randn(1, 3, 2, 16, 16, generator=torch.Generator().manual_seed(0))  # small: R(2+1)D forwards are costly
X_VIT = torch.randn(1, 3, 2, 32, 32, generator=torch.Generator().manual_seed(0))  # 4 tokens
SEVERE_METHODS = {"supervised", "moco", "video_moco", "selavi", "avid_cma", "gdt", "rspnet", "pretext_contrast",
                  "tclr", "ctp", "tubelet_contrast"}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """No test touches the user's cache."""
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))


# ---- helpers ---------------------------------------------------------------------------------------------------

POOL = torch.randn(1 << 20, generator=torch.Generator().manual_seed(123))


def noise(n: int, offset: int) -> torch.Tensor:
    """n pseudo-random values, a different stretch for every offset (cheaper than drawing 60M normals)."""
    start = offset % POOL.numel()
    rolled = torch.cat([POOL[start:], POOL[:start]])
    reps = -(-n // rolled.numel())
    return (rolled.repeat(reps) if reps > 1 else rolled)[:n]


def materialise(module: nn.Module, seed: int) -> nn.Module:
    """Random tensors of the true shapes for a module built on the meta device (fast, no init)."""
    module = module.to_empty(device="cpu")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            r = noise(t.numel(), int(torch.randint(0, 1 << 30, (1,), generator=g))).view(t.shape)
            if t.dtype == torch.long:
                t.copy_((r.abs() * 50).long())
            elif name.endswith("running_var"):
                t.copy_(r.abs() + 0.5)
            elif name.endswith("weight") and t.ndim == 1:  # norm scales around 1
                t.copy_(1 + 0.1 * r)
            else:
                t.copy_(0.05 * r)
    if hasattr(module, "reset_non_persistent_buffers"):  # the fixed sinusoid table is not a weight
        module.reset_non_persistent_buffers()
    return module.eval()


def meta(fn, *args, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return fn(*args, **kwargs)


def ddp(module: nn.Module) -> dict:
    """State dict of a DataParallel / DistributedDataParallel wrapped module: keys start with ``module.``."""
    return OrderedDict((f"module.{k}", v) for k, v in module.state_dict().items())


def tv_features(model: nn.Module, x=X) -> torch.Tensor:
    """Pooled features of a torchvision VideoResNet as SEVERE uses it (its fc replaced by the task head)."""
    with torch.no_grad():
        h = model.stem(x)
        h = model.layer4(model.layer3(model.layer2(model.layer1(h))))
        return model.avgpool(h).flatten(1)


def sgd_state(module: nn.Module) -> dict:
    params = [p for p in list(module.parameters())[:3]]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    return opt.state_dict()


def namespace(**kw) -> argparse.Namespace:
    return argparse.Namespace(arch="r2plus1d_18", lr=0.01, epochs=200, batch_size=128, schedule=[120, 160],
                              seed=None, multiprocessing_distributed=True, **kw)


# ---- the methods' own module trees -----------------------------------------------------------------------------

class Identity(nn.Module):
    def forward(self, x):
        return x


class MLPv2(nn.Module):  # SeLaVi / GDT projection heads
    def __init__(self, n_input, n_classes, n_hidden=512):
        super().__init__()
        self.block_forward = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(n_input, n_hidden, bias=False),
                                           Identity(), nn.BatchNorm1d(n_hidden), nn.Flatten(), nn.ReLU(),
                                           nn.Dropout(0.3), nn.Linear(n_hidden, n_classes))


def audio_resnet9() -> nn.Module:  # SeLaVi/GDT audio network: ResNet [1, 1, 1, 1] on 1-channel spectrograms
    m = resnet.ResNet(resnet.BasicBlock, [1, 1, 1, 1])
    m.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    m.fc = Identity()
    return m


class BaseNetwork(nn.Module):  # SeLaVi/GDT VideoBaseNetwork / AudioBaseNetwork: the model sits in .base
    def __init__(self, base):
        super().__init__()
        self.base = base


def video_base(arch=r2plus1d_18) -> nn.Module:
    m = arch()
    m.fc = Identity()
    return m


class MoCo(nn.Module):  # tinapan-pt/VideoMoCo moco/builder.py (mlp head)
    def __init__(self, arch, dim=128, K=256):
        super().__init__()
        self.encoder_q, self.encoder_k = arch(num_classes=dim), arch(num_classes=dim)
        for enc in (self.encoder_q, self.encoder_k):
            enc.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), enc.fc)
        self.register_buffer("queue", torch.randn(dim, K))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))


class SelaviAV(nn.Module):  # facebookresearch/selavi model.py AVModel, headcount 2, use_mlp
    def __init__(self):
        super().__init__()
        self.video_network = BaseNetwork(video_base())
        self.audio_network = BaseNetwork(audio_resnet9())
        for a in range(2):
            setattr(self, f"mlp_v{a}", MLPv2(512, 256))
            setattr(self, f"mlp_a{a}", MLPv2(512, 256))


class GDT(nn.Module):  # facebookresearch/GDT model.py GDT (VMZ r2plus1d_18 = torchvision keys), use_mlp
    def __init__(self):
        super().__init__()
        self.video_network = BaseNetwork(video_base())
        self.audio_network = BaseNetwork(audio_resnet9())
        self.mlp_v = MLPv2(512, 256)
        self.mlp_a = MLPv2(512, 256)


class Head(nn.Module):  # AVID-CMA av_wrapper.Head
    def __init__(self, d_in, d_out):
        super().__init__()
        self.projection = nn.Sequential(nn.Linear(d_in, d_out))


class AVWrapper(nn.Module):  # AVID-CMA av_wrapper.AV_Wrapper with the torchvision R(2+1)D-18 (SEVERE re-training)
    def __init__(self):
        super().__init__()
        self.video_model = r2plus1d_18()  # keeps a Kinetics fc; the layout drops it
        self.audio_model = audio_resnet9()
        self.video_proj = Head(512, 128)
        self.audio_proj = Head(512, 128)


class RSPEncoder(nn.Module):  # SEVERE's R(2+1)D encoder for RSPNet: base_network = stem, layer1..4; plus an fc
    def __init__(self):
        super().__init__()
        tv = r2plus1d_18()
        self.base_network = nn.Sequential(tv.stem, tv.layer1, tv.layer2, tv.layer3, tv.layer4)
        self.fc = nn.Linear(512, 1)


class MultiTaskWrapper(nn.Module):  # RSPNet moco/split_wrapper.py, fc_type linear
    def __init__(self):
        super().__init__()
        self.encoder = RSPEncoder()
        self.fc1 = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(512, 128))
        self.fc2 = nn.Sequential(nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(512, 128))


class RSPNetMoCo(nn.Module):  # RSPNet moco/builder_diffspeed_diffloss.py MoCoDiffLossTwoFc
    def __init__(self):
        super().__init__()
        self.encoder_q, self.encoder_k = MultiTaskWrapper(), MultiTaskWrapper()
        self.register_buffer("queue", torch.randn(128, 256))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))


class PCVideoNet(nn.Module):  # BestJuly/Pretext-Contrastive-Learning models/network.py PC_VideoNet('r21d')
    def __init__(self):
        super().__init__()
        self.base_network = nn.Sequential(*list(r2plus1d_18().children())[:-1])
        self.relu = nn.ReLU()
        self.projector = nn.Module()
        self.projector.mlp = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))
        self.fc_seq = nn.Linear(1024, 2)
        self.fc_speed = nn.Linear(1024, 4)


class TCLRMlp(nn.Module):  # DAVEISHAN/TCLR tclr_pretraining/mlp.py
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(512, 512)
        self.bn1 = nn.BatchNorm1d(512)
        self.bn2 = nn.BatchNorm1d(128)
        self.fc2 = nn.Linear(512, 128, bias=False)


def tclr_backbone() -> nn.Module:  # TCLR's VideoResNet (no fc) with its layer4 change
    m = r2plus1d_18()
    m.layer4[0].conv1[0] = nn.Conv3d(256, 512, kernel_size=(3, 3, 3), stride=(1, 2, 2), padding=(2, 1, 1),
                                     dilation=(2, 1, 1), bias=False)
    m.layer4[0].downsample[0] = nn.Conv3d(256, 512, kernel_size=(1, 1, 1), stride=(1, 2, 2), bias=False)
    m.fc = Identity()
    return m


# pyvrl (microsoft/CtP, fmthoker/tubelet-contrast) pyvrl/models/backbones/r3d.py, transcribed
def pyvrl_conv(block_type, cin, cout, k, mid=None, stride=(1, 1, 1), pad=(1, 1, 1)) -> nn.Sequential:
    d = OrderedDict()
    if block_type == "2.5d":
        d["conv_s"] = nn.Conv3d(cin, mid, (1, k[1], k[2]), stride=(1, stride[1], stride[2]), padding=(0, pad[1], pad[2]),
                                bias=False)
        d["bn_s"] = nn.BatchNorm3d(mid, eps=1e-3)
        d["relu_s"] = nn.ReLU(inplace=True)
        d["conv_t"] = nn.Conv3d(mid, cout, (k[0], 1, 1), stride=(stride[0], 1, 1), padding=(pad[0], 0, 0), bias=False)
    else:
        d["conv"] = nn.Conv3d(cin, cout, k, stride=stride, padding=pad, bias=False)
    return nn.Sequential(d)


class PyvrlBlock(nn.Module):
    def __init__(self, block_type, cin, cout, down):
        super().__init__()
        stride = (2, 2, 2) if down else (1, 1, 1)
        mid = (3 * cin * cout * 3 * 3) // (cin * 3 * 3 + 3 * cout)
        self.conv1 = pyvrl_conv(block_type, cin, cout, (3, 3, 3), mid, stride)
        self.bn1 = nn.BatchNorm3d(cout, eps=1e-3)
        self.conv2 = pyvrl_conv(block_type, cout, cout, (3, 3, 3), mid)
        self.bn2 = nn.BatchNorm3d(cout, eps=1e-3)
        if down or cin != cout:
            self.downsample = pyvrl_conv("3d", cin, cout, (1, 1, 1), stride=stride, pad=(0, 0, 0))
            self.downsample_bn = nn.BatchNorm3d(cout, eps=1e-3)
        else:
            self.downsample = None
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample_bn(self.downsample(x))
        return self.relu(out + identity)


class PyvrlResNet(nn.Module):
    def __init__(self, block_type):
        super().__init__()
        d = OrderedDict()
        if block_type == "2.5d":
            d["conv_s"] = nn.Conv3d(3, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False)
            d["bn_s"] = nn.BatchNorm3d(45, eps=1e-3)
            d["relu_s"] = nn.ReLU(inplace=True)
            d["conv_t"] = nn.Conv3d(45, 64, (3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False)
            d["bn_t"] = nn.BatchNorm3d(64, eps=1e-3)
            d["relu_t"] = nn.ReLU(inplace=True)
        else:
            d["conv"] = nn.Conv3d(3, 64, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False)
            d["bn"] = nn.BatchNorm3d(64, eps=1e-3)
            d["relu"] = nn.ReLU(inplace=True)
        self.stem = nn.Sequential(d)
        cin = 64
        for i, (cout, down) in enumerate([(64, False), (128, True), (256, True), (512, True)]):
            self.add_module(f"layer{i + 1}", nn.Sequential(PyvrlBlock(block_type, cin, cout, down),
                                                           PyvrlBlock(block_type, cout, cout, False)))
            cin = cout

    def forward(self, x):
        x = self.stem(x)
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        return x


class CtP(nn.Module):  # microsoft/CtP ctp_model.py + ctp_head.py
    def __init__(self):
        super().__init__()
        self.backbone = PyvrlResNet("2.5d")
        self.head = nn.Module()
        self.head.temporal_conv = nn.Conv3d(512, 256, (2, 1, 1))
        self.head.fc1 = nn.Linear(256 * 16, 256)
        self.head.pred_head = nn.Linear(256, 16 * 4)


class PyvrlMoCo(nn.Module):  # fmthoker/tubelet-contrast pyvrl/models/pretraining/tubeletcontrast/model.py
    def __init__(self, block_type):
        super().__init__()
        self.backbone = PyvrlResNet(block_type)
        self.key_encoder = PyvrlResNet(block_type)
        self.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))
        self.key_fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 128))
        self.register_buffer("queue", torch.randn(128, 256))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))


def pyvrl_features(backbone: nn.Module, x=X) -> torch.Tensor:
    with torch.no_grad():
        return backbone(x).mean(dim=(2, 3, 4))


def mmcv_container(model: nn.Module, epoch: int) -> dict:
    return {"meta": {"mmcv_version": "1.3.9", "time": "Mon Jun  7 10:00:00 2021", "epoch": epoch, "iter": 123456,
                     "config": "model = dict(type='CtP', backbone=dict(type='R2Plus1D', depth=18))"},
            "state_dict": OrderedDict(model.state_dict()), "optimizer": sgd_state(model)}


def videomae_decoder() -> nn.Module:  # modeling_pretrain.py PretrainVisionTransformerDecoder (ViT-S/B: 384-d, 4)
    decoder = nn.Module()
    decoder.blocks = nn.ModuleList(Block(384, 6, 4.0, True, 1e-6, 0.0) for _ in range(4))
    decoder.norm = nn.LayerNorm(384, eps=1e-6)
    decoder.head = nn.Linear(384, 3 * 2 * 16 * 16)
    return decoder


def write_videomae(arch: str, finetuned: bool, path: Path) -> torch.Tensor:
    """VideoMAE pre-training (encoder/decoder) or fine-tuned (VisionTransformer + head) checkpoint."""
    vit = materialise(meta(create_backbone, arch), 7)
    dim = vit.feature_dim
    enc = OrderedDict(vit.state_dict())
    if finetuned:
        sd = OrderedDict(enc)
        sd["head.weight"] = torch.randn(400, dim) * 0.02
        sd["head.bias"] = torch.zeros(400)
        reference = vit
    else:
        enc.pop("fc_norm.weight")
        enc.pop("fc_norm.bias")
        enc["norm.weight"] = 1 + 0.1 * torch.randn(dim)  # the pre-training encoder's final norm
        enc["norm.bias"] = 0.1 * torch.randn(dim)
        sd = OrderedDict((f"encoder.{k}", v) for k, v in enc.items())
        sd.update((f"decoder.{k}", v) for k, v in materialise(meta(videomae_decoder), 8).state_dict().items())
        sd["encoder_to_decoder.weight"] = torch.randn(384, dim) * 0.02
        sd["mask_token"] = torch.zeros(1, 1, 384)
        reference = vit  # VideoMAE fine-tuning: encoder weights, final norm unused, fc_norm fresh (1, 0)
        with torch.no_grad():
            reference.fc_norm.weight.fill_(1.0)
            reference.fc_norm.bias.zero_()
    torch.save({"model": sd, "optimizer": sgd_state(vit), "epoch": 1599, "scaler": {"scale": 65536.0, "growth_factor": 2.0},
                "args": namespace(model=f"pretrain_videomae_{arch}", mask_ratio=0.9, tubelet_size=2,
                                  input_size=224, opt_betas=[0.9, 0.95])}, path)
    with torch.no_grad():
        return reference.forward_features(X_VIT)


def write(method: str, arch: str, path: Path) -> torch.Tensor:
    """Write a checkpoint in ``method``'s layout and wrapping to ``path``; return the source features on X."""
    if method == "moco":
        model = materialise(meta(MoCo, r2plus1d_18), 1)
        torch.save({"epoch": 200, "arch": "r2plus1d_18", "state_dict": ddp(model)}, path)
        return tv_features(model.encoder_q)
    if method in ("imagenet_resnet18", "imagenet_resnet50"):  # torchvision's image ResNet file: bare state dict
        model = materialise(meta(getattr(resnet, arch)), 12)
        torch.save(model.state_dict(), path)
        trunk = nn.Sequential(*list(model.children())[:-1])
        with torch.no_grad():  # TSN-style: every frame through the 2D net, pooled features averaged over frames
            frames = X.transpose(1, 2).flatten(0, 1)  # (T, 3, H, W): X holds one clip
            return trunk(frames).flatten(1).mean(0, keepdim=True)
    if method == "supervised":
        model = materialise(meta(r2plus1d_18), 2)
        torch.save(model.state_dict(), path)  # torchvision's weight file: a bare state dict with fc
        return tv_features(model)
    if method == "selavi":
        model = materialise(meta(SelaviAV), 3)
        torch.save({"epoch": 200, "model": ddp(model), "optimizer": sgd_state(model),
                    "selflabels": torch.randint(0, 256, (64, 2))}, path)
        return tv_features(model.video_network.base)
    if method == "gdt":
        model = materialise(meta(GDT), 4)
        torch.save({"model": model.state_dict(), "optimizer": sgd_state(model),
                    "lr_scheduler": {"milestones": {30: 1}, "last_epoch": 99, "gamma": 0.1}, "epoch": 100,
                    "args": namespace(hypothesis=9, vid_base_arch="r2plus1d_18")}, path)
        return tv_features(model.video_network.base)
    if method == "avid_cma":
        model = materialise(meta(AVWrapper), 5)
        torch.save({"epoch": 20, "model": ddp(model), "optimizer": sgd_state(model),
                    "train_criterion": {"memory": torch.randn(32, 128)}, "best_acc": np.float64(41.3)}, path)
        return tv_features(model.video_model)
    if method == "rspnet":
        model = materialise(meta(RSPNetMoCo), 6)
        torch.save({"model": model.state_dict(), "optimizer": sgd_state(model), "epoch": 200,
                    "cfg": "{model: {arch: r2plus1d}, moco: {dim: 128}}"}, path)
        net = model.encoder_q.encoder.base_network
        with torch.no_grad():
            return net(X).mean(dim=(2, 3, 4))
    if method == "pretext_contrast":
        model = materialise(meta(PCVideoNet), 9)
        torch.save(ddp(model), path)  # the .pt file is the DataParallel model's bare state dict
        with torch.no_grad():
            return model.base_network(X).flatten(1)
    if method == "tclr":
        model = materialise(meta(lambda: nn.Sequential(tclr_backbone(), TCLRMlp())), 10)
        torch.save({"epoch": 100, "state_dict": ddp(model), "optimizer": sgd_state(model),
                    "amp_scaler": {"scale": 1024.0}}, path)
        return tv_features(model[0])
    if method == "ctp":
        model = materialise(meta(CtP), 11)
        torch.save(mmcv_container(model, 90), path)
        return pyvrl_features(model.backbone)
    if method in ("tubelet_contrast", "tubelet_contrast_r3d"):
        model = materialise(meta(PyvrlMoCo, "2.5d" if arch == "r2plus1d_18" else "3d"), 12)
        torch.save(mmcv_container(model, 100), path)
        return pyvrl_features(model.backbone)
    if method in ("videomae_pretrain", "videomae_finetune"):
        return write_videomae(arch, method == "videomae_finetune", path)
    raise AssertionError(f"no writer for {method}")


def writer_key(entry) -> tuple:
    """Entries that share a file format share one written file."""
    if entry.layout in ("videomae_pretrain", "videomae_finetune", "moco"):
        return entry.layout, entry.architecture
    return entry.name, entry.architecture


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """name -> (path of the file as the registry expects it, source features); files shared where identical."""
    root = tmp_path_factory.mktemp("ckpt")
    cache: dict = {}

    def get(entry):
        key = writer_key(entry)
        if key not in cache:
            method = key[0]
            path = root / "src" / "_".join(key) / (entry.source.file or "ckpt.pth")
            path.parent.mkdir(parents=True)
            cache[key] = (path, write(method, entry.architecture, path))
        return cache[key]

    return get, root


@pytest.fixture
def registry_dir(tmp_path, monkeypatch):
    """An empty cache and a search path where tests place files under the registry's member paths."""
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SEVERE_CHECKPOINTS_PATH", str(tmp_path / "manual"))
    monkeypatch.setenv("SEVERE_OFFLINE", "1")
    return tmp_path / "manual"


def place(entry, src: Path, manual: Path) -> Path:
    rel = entry.source.member or entry.source.file
    dest = manual / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not dest.exists():
        try:
            os.link(src, dest)
        except OSError:
            shutil.copy(src, dest)
    return dest


# ---- tests -----------------------------------------------------------------------------------------------------

def test_registry_covers_severe_and_videomae():
    names = set(REG.entries)
    assert SEVERE_METHODS <= names
    vit = {(e.architecture, e.pretraining.get("dataset")) for e in REG.entries.values() if e.layout.startswith("videomae")}
    for arch in ("vit_s_16", "vit_b_16"):
        assert (arch, "Kinetics-400") in vit
        assert (arch, "Something-Something-v2") in vit
    assert ("vit_b_16", "UCF101") in vit
    for e in REG.entries.values():
        assert e.citation and (e.source.url or e.source.member or e.source.hub) and e.source.homepage
        assert e.architecture in REG.layouts[e.layout].architectures
    tclr, ctp, avid = REG.get("tclr"), REG.get("ctp"), REG.get("avid_cma")
    # TCLR's input convention and AVID-CMA's lr are scoped overrides (PROTOCOL.md §3.3), not global quirks
    assert tclr.normalisation == REG.get("moco").normalisation
    assert {"mean": None, "std": None, "channel_order": "BGR"} in [o["set"].get("normalisation") for o in tclr.overrides]
    assert tclr.arch_kwargs == {"layer4_temporal": "dilated"}
    assert ctp.bn_eps == REG.get("tubelet_contrast").bn_eps == 1e-3
    assert [(o["protocols"], o["set"]) for o in avid.overrides] == [(["finetune"], {"optimizer": {"lr": 1e-3}})]
    assert REG.get("moco").normalisation["mean"] == [0.485, 0.456, 0.406]


def test_registry_metadata_matches_the_backbones():
    for e in REG.entries.values():
        kw = {k: v for k, v in e.backbone_kwargs.items() if k != "bn_eps"}
        with torch.device("meta"):
            n = sum(p.numel() for p in create_backbone(e.architecture, **kw).parameters())
        assert e.meta["params"] == n, e.name
        for shape, g in e.meta["gflops"].items():
            assert flops_and_params(e.architecture, tuple(map(int, shape.split("x"))), **kw) == (g, n), e.name


# One entry per distinct (layout, architecture, quirks): every SEVERE method, and VideoMAE pre-trained ViT-S/B and
# fine-tuned ViT-S. The remaining VideoMAE entries differ only in their source URL (test_same_format_as_tested).
LOADED = sorted(SEVERE_METHODS | {"tubelet_contrast_r3d", "videomae_vit_s_k400", "videomae_vit_b_k400",
                                  "videomae_vit_s_k400_ft", "imagenet_resnet18", "imagenet_resnet50"})


def test_same_format_as_tested():
    fmt = lambda e: (e.layout, e.architecture, e.arch_kwargs, e.quirks())
    tested = {json.dumps(fmt(REG.get(n)), sort_keys=True, default=str) for n in LOADED}
    vit_ft = fmt(REG.get("videomae_vit_s_k400_ft"))
    for e in REG.entries.values():
        if e.layout.startswith("transformers_"):
            continue  # Hugging Face folders: tests/test_hf_videomae.py
        if e.name not in LOADED:
            f = fmt(e)
            # ViT-B fine-tuned differs from the tested ViT-S fine-tuned in width only (inferred from the shapes)
            same = json.dumps(f, sort_keys=True, default=str) in tested \
                or (f[0], f[2], f[3]) == (vit_ft[0], vit_ft[2], vit_ft[3])
            assert same, e.name


@pytest.mark.parametrize("name", LOADED)
def test_every_method_loads_exactly(name, written, registry_dir):
    entry = REG.get(name)
    get, _ = written
    src, expected = get(entry)
    if entry.source.sha256 or entry.source.sha256_prefix:
        # a file that is not the published one is refused by hash; the layout still applies to the path
        place(entry, src, registry_dir)
        with pytest.raises(CheckpointError, match="sha256"):
            load_checkpoint(name, count_flops=False)
        loaded = load_checkpoint(str(src), layout=entry.layout, arch=entry.architecture, count_flops=False)
    else:
        place(entry, src, registry_dir)
        loaded = load_checkpoint(name, count_flops=False)
        assert loaded.info["name"] == name and loaded.info["quirks_from"] == [name]
        assert loaded.info["normalisation"] == entry.normalisation
        assert loaded.info["bn_eps"] == entry.bn_eps
    info = loaded.info
    assert info["missing"] == [] and info["unexpected"] == [] and info["shape_mismatch"] == []
    assert info["architecture"] == entry.architecture and info["layout"] == entry.layout
    assert info["loaded"] + len(info["initialised_fresh"]) == info["expected"]
    assert info["dropped_count"] > 0 or name == "supervised"
    x = X_VIT if entry.architecture.startswith("vit") else X
    with torch.no_grad():
        feats = loaded.backbone.forward_features(x)
    torch.testing.assert_close(feats, expected, rtol=1e-5, atol=1e-6)
    # the directly built backbone with the same weights computes the same
    direct = meta(create_backbone, entry.architecture, **entry.backbone_kwargs).to_empty(device="cpu")
    if hasattr(direct, "reset_non_persistent_buffers"):
        direct.reset_non_persistent_buffers()
    direct.load_state_dict(loaded.backbone.state_dict())
    with torch.no_grad():
        assert torch.equal(direct.eval().forward_features(x), feats)


@pytest.mark.parametrize("name", ["moco", "rspnet", "pretext_contrast", "tclr", "ctp", "videomae_vit_s_k400"])
def test_unknown_file_layout_is_detected(name, written, monkeypatch, tmp_path):
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path))
    entry = REG.get(name)
    src, expected = written[0](entry)
    loaded = load_checkpoint(str(src), count_flops=False)  # no registry name: layout and architecture detected
    info = loaded.info
    assert entry.layout in info["layout_candidates"]
    assert info["architecture"] == entry.architecture and info["missing"] == []
    # quirks follow the codebase that wrote the file (TCLR: raw BGR on its scoped tasks; pyvrl: BatchNorm eps 1e-3)
    assert info["normalisation"] == entry.normalisation and info["bn_eps"] == entry.bn_eps
    assert info["overrides"] == entry.overrides
    assert info["arch_kwargs"].get("layer4_temporal", "stride") == entry.arch_kwargs.get("layer4_temporal", "stride")
    x = X_VIT if entry.architecture.startswith("vit") else X
    with torch.no_grad():
        torch.testing.assert_close(loaded.backbone.forward_features(x), expected, rtol=1e-5, atol=1e-6)


def test_wrong_prefix_fails_listing_keys(written, registry_dir, tmp_path):
    entry = REG.get("moco")
    src, _ = written[0](entry)
    obj = torch.load(src, weights_only=True)
    obj["state_dict"] = OrderedDict((k.replace("module.encoder_q.", "module.encoder_x."), v)
                                    for k, v in obj["state_dict"].items())
    bad = registry_dir / entry.source.member
    bad.parent.mkdir(parents=True)
    torch.save(obj, bad)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint("moco", count_flops=False)
    msg = str(err.value)
    assert "missing backbone keys 185: stem.0.weight" in msg and "and 165 more" in msg
    assert "--allow-partial" in msg
    partial = load_checkpoint("moco", allow_partial=True, count_flops=False)
    assert partial.info["loaded"] == 0 and len(partial.info["missing"]) == 185
    result = CliRunner().invoke(checkpoints_cli, ["verify", str(bad), "--layout", "moco", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False and "stem.0.weight" in report["missing"] and report["sha256"]


def test_truncated_backbone_fails_even_when_detected(written, tmp_path, monkeypatch):
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path))
    src, _ = written[0](REG.get("selavi"))
    obj = torch.load(src, weights_only=True)
    obj["model"] = OrderedDict((k, v) for k, v in obj["model"].items() if ".base.layer4." not in k)
    path = tmp_path / "truncated.pth"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=r"missing backbone keys \d+: layer4\.0\.conv1\.0\.0\.weight"):
        load_checkpoint(str(path), count_flops=False)
    result = CliRunner().invoke(checkpoints_cli, ["verify", str(path)])
    assert result.exit_code == 1 and "layer4.1.conv2.1.weight" in result.output and "FAILED" in result.output


def test_verify_ok_json_and_text(written, tmp_path, monkeypatch):
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path))
    src, _ = written[0](REG.get("gdt"))
    result = CliRunner().invoke(checkpoints_cli, ["verify", str(src), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["architecture"] == "r2plus1d_18" and report["layout"] in ("gdt", "selavi")
    assert set(report["layout_candidates"]) == {"gdt", "selavi"}  # identical key patterns
    assert report["missing"] == [] and report["unexpected"] == [] and len(report["sha256"]) == 64
    assert report["dropped"]["audio_network.base"] > 0
    text = CliRunner().invoke(checkpoints_cli, ["verify", str(src)])
    assert text.exit_code == 0 and "OK: every backbone weight was loaded" in text.output


class Exploit:
    """Unpickling this calls os.system: a weights-only load must refuse it without running it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_malicious_pickle_is_refused_without_running(zip_format, tmp_path, monkeypatch):
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    weights = meta(create_backbone, "r3d_18").to_empty(device="cpu").state_dict()
    torch.save({"state_dict": weights, "payload": Exploit(marker)}, path, _use_new_zipfile_serialization=zip_format)
    with pytest.raises(CheckpointError, match=r"refused to load.*(posix|os|nt)\.system.*--trust-checkpoint"):
        load_checkpoint(str(path), count_flops=False)
    result = CliRunner().invoke(checkpoints_cli, ["verify", str(path)])
    assert result.exit_code != 0 and "system" in str(result.exception)
    assert not marker.exists()


def test_foreign_global_needs_trust(tmp_path, monkeypatch):
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    model = create_backbone("r3d_18")
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": model.state_dict(), "args": namespace(out_dir=Path("/runs/x")),
                "best": np.float32(0.5), "hist": np.arange(5)}, path)
    with pytest.raises(CheckpointError, match=r"pathlib[\w.]*Path"):
        load_checkpoint(str(path), count_flops=False)
    loaded = load_checkpoint(str(path), trust=True, count_flops=False)
    assert loaded.info["missing"] == [] and loaded.info["architecture"] == "r3d_18"


def test_html_page_and_missing_file(tmp_path):
    page = tmp_path / "model.pth"
    page.write_text("<!DOCTYPE html><html><body>Google Drive - virus scan warning</body></html>")
    with pytest.raises(CheckpointError, match="HTML page"):
        load_checkpoint(str(page), count_flops=False)
    with pytest.raises(CheckpointError, match="neither a registry name, a URL nor an existing file"):
        load_checkpoint(str(tmp_path / "nope.pth"), count_flops=False)


def test_learned_pos_embed_of_another_grid_is_resampled(tmp_path, monkeypatch):
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    small = materialise(meta(create_backbone, "vit_s_16", pos_embed="learned", img_size=64, num_frames=16), 3)
    path = tmp_path / "vit.pth"
    torch.save({"model": small.state_dict()}, path)
    loaded = load_checkpoint(str(path), count_flops=False)
    info = loaded.info
    assert info["layout"] == "videomae_finetune" and info["missing"] == []
    assert info["pos_embed_resized"] == "(8, 4, 4) -> (8, 14, 14)"
    assert loaded.backbone.pos_embed.shape == (1, 8 * 14 * 14, 384)


def test_scratch_and_arch_errors():
    s = load_checkpoint("scratch", count_flops=False)
    assert s.info["layout"] == "scratch" and s.info["architecture"] == "r2plus1d_18" and s.info["sha256"] is None
    v = load_checkpoint("scratch", arch="vit_s_16", count_flops=False)
    assert v.backbone.feature_dim == 384
    with pytest.raises(ConfigError):
        load_checkpoint("scratch", arch="vgg16", count_flops=False)


def test_cli_list_and_show():
    runner = CliRunner()
    out = runner.invoke(checkpoints_cli, ["list", "--json"])
    assert out.exit_code == 0
    assert {r["name"] for r in json.loads(out.output)} == set(REG.entries)
    show = runner.invoke(checkpoints_cli, ["show", "tclr"])
    assert show.exit_code == 0, show.output
    assert "85.48 GFLOPs" in show.output and "none (raw [0, 1] values), BGR" in show.output
    data = json.loads(runner.invoke(checkpoints_cli, ["show", "videomae_vit_b_k400", "--json"]).output)
    assert data["fvcore"]["3x16x224x224"]["gflops"] == pytest.approx(180.49, abs=0.01)
    assert data["layout_rules"]["fresh"] == ["fc_norm\\."]
    bad = runner.invoke(checkpoints_cli, ["show", "nonexistent"])
    assert bad.exit_code != 0 and "unknown checkpoint" in str(bad.exception)


# ---- FLOPs -----------------------------------------------------------------------------------------------------

def test_flops_r2plus1d_matches_torchvision_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path))
    from torchvision.models.video import R2Plus1D_18_Weights

    ops = count_by_operator(create_backbone("r2plus1d_18"), (3, 16, 112, 112))
    assert round(ops["conv"] / 1e9, 3) == R2Plus1D_18_Weights.KINETICS400_V1.meta["_ops"]  # 40.519
    assert round(sum(ops.values()) / 1e9, 4) == REG.flops["r2plus1d_18"]["3x16x112x112"]["gflops"]  # shipped count
    g, p = flops_and_params("r3d_18", (1, 3, 4, 32, 32))
    assert p == 33_166_272 and g > 0
    cache = json.loads((tmp_path / "flops.json").read_text())
    assert any("r3d_18|3x4x32x32" in k for k in cache)
    import severe_bench.checkpoints.flops as fl

    fl._memory.clear()
    monkeypatch.setattr(fl, "count", lambda *a, **k: (_ for _ in ()).throw(AssertionError("recounted")))
    assert flops_and_params("r3d_18", (3, 4, 32, 32)) == (g, p)  # from the disk cache


def test_attention_flops_are_counted():
    m = create_backbone("vit_s_16", img_size=32, num_frames=4)
    with_attn = count_by_operator(m, (3, 4, 32, 32))
    without = count_by_operator(m, (3, 4, 32, 32), attention=False)
    n, heads, d, depth = 8, 6, 64, 12
    assert "scaled_dot_product_attention" not in without
    assert with_attn["scaled_dot_product_attention"] == depth * 2 * heads * n * n * d
    assert sum(with_attn.values()) - sum(without.values()) == depth * 2 * heads * n * n * d
