"""VideoMAE as users get it from the Hugging Face Hub: transformers' own models, saved with save_pretrained, load
into the project's ViT and give the pooled features that transformers itself computes.

Every model below is a real transformers VideoMAE (ViT-S width and depth, 4 frames of 32x32 so that a forward is
cheap) with all parameters randomised: LayerNorm scales away from 1, distinct query/value biases, so that a key
mapped to the wrong place or a dropped bias changes the features. No network: Hub ids resolve from a cache
folder in the Hub's own layout, and with HF_HUB_OFFLINE=1 an uncached id must say how to use a local folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

transformers = pytest.importorskip("transformers")  # the `test` extra; only these tests need it

from severe_bench.checkpoints import load_checkpoint, load_registry  # noqa: E402
from severe_bench.checkpoints.hf_config import WEIGHT_FILES  # noqa: E402
from severe_bench.checkpoints.safe_load import load_file  # noqa: E402
from severe_bench.cli.checkpoints_cmd import checkpoints as checkpoints_cli  # noqa: E402
from severe_bench.errors import CheckpointError  # noqa: E402
from severe_bench.models import create_backbone  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

REG = load_registry()
SMALL = dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536, image_size=32,
             num_frames=4, tubelet_size=2, patch_size=16)  # ViT-S at 4x32x32: 2x2x2 tokens
X = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(0))  # (B, C, T, H, W), as the harness feeds


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """No test touches the user's cache or the network."""
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def randomise(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g)
            p.copy_(1 + 0.1 * r if p.ndim == 1 and "norm" in name and name.endswith("weight") else 0.05 * r)


def hf_pooled(model, x: torch.Tensor) -> torch.Tensor:
    """What transformers' VideoMAEForVideoClassification feeds its classifier (its own forward pass)."""
    seen = {}
    hook = model.classifier.register_forward_hook(lambda mod, inp, out: seen.__setitem__("x", inp[0]))
    with torch.no_grad():
        model(pixel_values=x.permute(0, 2, 1, 3, 4))  # transformers takes (B, T, C, H, W)
    hook.remove()
    return seen["x"]


def bin_folder(model, folder: Path) -> None:
    """config.json and pytorch_model.bin with the in-memory names of transformers 5 (query.bias / value.bias);
    save_pretrained itself writes the transformers-4 names (q_bias / v_bias) that most Hub files have."""
    model.config.save_pretrained(folder)
    torch.save(OrderedDict((k, v.clone()) for k, v in model.state_dict().items()), folder / "pytorch_model.bin")


def to_original_videomae(state_dict: dict) -> dict:
    """The same weights in MCG-NJU/VideoMAE's fine-tuned layout (VisionTransformer + head, fused qkv)."""
    out = OrderedDict()
    for k, v in state_dict.items():
        if k.startswith("classifier."):
            out[k.replace("classifier.", "head.")] = v
            continue
        if k.startswith("fc_norm."):
            out[k] = v
            continue
        k = k.removeprefix("videomae.")
        if k.startswith("embeddings.patch_embeddings.projection."):
            out[k.replace("embeddings.patch_embeddings.projection.", "patch_embed.proj.")] = v
            continue
        i = int(k.split(".")[2])
        rest = k.split(".", 3)[3]
        b = f"blocks.{i}."
        if rest.startswith("attention.attention."):
            which = rest.split(".")[2]
            if which == "query" and rest.endswith("weight"):
                p = f"videomae.encoder.layer.{i}.attention.attention."
                out[b + "attn.qkv.weight"] = torch.cat([state_dict[p + n + ".weight"] for n in ("query", "key", "value")])
            elif rest.endswith("bias"):
                out[b + ("attn.q_bias" if which == "query" else "attn.v_bias")] = v
            continue
        name = {"attention.output.dense": "attn.proj", "layernorm_before": "norm1", "layernorm_after": "norm2",
                "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2"}[rest.rsplit(".", 1)[0]]
        out[b + name + "." + rest.rsplit(".", 1)[1]] = v
    return out


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A randomised VideoMAEForVideoClassification saved as safetensors and as .bin; its own pooled features."""
    root = tmp_path_factory.mktemp("hf")
    model = transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(**SMALL, num_labels=5)).eval()
    randomise(model, 1)
    model.save_pretrained(root / "safetensors")
    bin_folder(model, root / "bin")
    return model, root, hf_pooled(model, X)


def assert_rel_close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-5) -> None:
    assert a.shape == b.shape
    assert ((a - b).norm() / b.norm()).item() <= rel, ((a - b).abs().max().item(), b.abs().max().item())


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_save_pretrained_folder_gives_transformers_features(classifier, fmt):
    model, root, expected = classifier
    folder = root / fmt
    assert sorted(p.name for p in folder.iterdir() if p.name in WEIGHT_FILES) == \
        [{"safetensors": "model.safetensors", "bin": "pytorch_model.bin"}[fmt]]
    keys = set(load_file(next(p for p in folder.iterdir() if p.name in WEIGHT_FILES)))
    bias = {"safetensors": "q_bias", "bin": "query.bias"}[fmt]  # both names of the query bias occur in real files
    assert f"videomae.encoder.layer.0.attention.attention.{bias}" in keys
    if fmt == "bin":  # a file transformers itself reads as this model
        again = transformers.VideoMAEForVideoClassification.from_pretrained(folder).eval()
        assert torch.equal(hf_pooled(again, X), expected)

    result = CliRunner().invoke(checkpoints_cli, ["verify", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] and report["layout"] == "transformers_videomae" and report["architecture"] == "vit_s_16"
    assert report["missing"] == report["unexpected"] == report["initialised_fresh"] == []
    assert report["model_class"] == "VideoMAEForVideoClassification" and report["config"].endswith("config.json")
    assert report["dropped"] == {"classifier.bias": 1, "classifier.weight": 1}
    kw = report["arch_kwargs"]
    assert (kw["img_size"], kw["num_frames"], kw["tubelet_size"], kw["norm_eps"], kw["fc_norm_eps"]) == (32, 4, 2, 1e-12, 1e-5)
    text = CliRunner().invoke(checkpoints_cli, ["verify", str(folder)])
    assert text.exit_code == 0 and "OK: every backbone weight was loaded" in text.output and "config" in text.output

    # the `severe eval` loading path, from the folder and from the weights file inside it
    for spec in (str(folder), str(next(p for p in folder.iterdir() if p.name in WEIGHT_FILES))):
        loaded = load_checkpoint(spec, count_flops=False)
        assert loaded.info["label"] == fmt and loaded.info["loaded"] == loaded.info["expected"]
        with torch.no_grad():
            ours = loaded.backbone.forward_features(X)
        assert_rel_close(ours, expected)
        sd = loaded.backbone.state_dict()
        assert sd["blocks.3.attn.q_bias"].abs().sum() > 0 and sd["blocks.3.norm1.weight"].sub(1).abs().max() > 0.05


def test_same_weights_in_the_original_videomae_layout(classifier, tmp_path):
    model, _, expected = classifier
    path = tmp_path / "checkpoint-best.pth"
    torch.save({"model": to_original_videomae(model.state_dict()), "epoch": 99}, path)
    loaded = load_checkpoint(str(path), count_flops=False)
    assert loaded.info["layout"] == "videomae_finetune" and loaded.info["missing"] == []
    assert loaded.info["arch_kwargs"]["norm_eps"] == 1e-6  # VideoMAE's own LayerNorms; transformers uses 1e-12/1e-5
    with torch.no_grad():
        ours = loaded.backbone.forward_features(X)
    assert_rel_close(ours, expected)
    hf = load_checkpoint(str(Path(classifier[1]) / "safetensors"), count_flops=False).backbone.state_dict()
    assert hf.keys() == loaded.backbone.state_dict().keys()
    assert all(torch.equal(v, loaded.backbone.state_dict()[k]) for k, v in hf.items())


def test_pretraining_folder_follows_the_finetuning_recipe(tmp_path):
    cfg = transformers.VideoMAEConfig(**SMALL, use_mean_pooling=False, decoder_hidden_size=192,
                                      decoder_num_hidden_layers=1, decoder_num_attention_heads=3,
                                      decoder_intermediate_size=384)
    model = transformers.VideoMAEForPreTraining(cfg).eval()
    randomise(model, 2)
    model.save_pretrained(tmp_path / "pre")
    loaded = load_checkpoint(str(tmp_path / "pre"), count_flops=False)
    info = loaded.info
    assert info["layout"] == "transformers_videomae_pretrain" and info["model_class"] == "VideoMAEForPreTraining"
    assert info["initialised_fresh"] == ["fc_norm.weight", "fc_norm.bias"] and info["missing"] == []
    assert {"decoder.decoder_layers", "encoder_to_decoder.weight", "videomae.layernorm"} <= set(info["dropped"])
    with torch.no_grad():
        tokens = model.videomae(X.permute(0, 2, 1, 3, 4), output_hidden_states=True).hidden_states[-1]
        expected = F.layer_norm(tokens.mean(1), (384,), eps=1e-5)  # mean pooling into a fresh fc_norm (1, 0)
        assert_rel_close(loaded.backbone.forward_features(X), expected)
    # the encoder's final norm (use_mean_pooling false) is what transformers would apply; the recipe does not
    assert not torch.allclose(model.videomae.layernorm(tokens).mean(1), tokens.mean(1))


@pytest.mark.parametrize("field,value,needle", [
    ("hidden_size", 1024, "hidden_size 1024"),
    ("num_hidden_layers", 24, "num_hidden_layers 24"),
    ("num_attention_heads", 12, "num_attention_heads 12"),
    ("use_mean_pooling", False, "use_mean_pooling False"),
    ("hidden_act", "gelu_new", "hidden_act 'gelu_new'"),
    ("image_size", [32, 48], "image_size [32, 48]"),
    ("model_type", "vit", "model_type 'vit'"),
])
def test_config_the_backbones_cannot_represent_is_refused(classifier, tmp_path, field, value, needle):
    src = classifier[1] / "safetensors"
    folder = tmp_path / "edited"
    folder.mkdir()
    os.link(src / "model.safetensors", folder / "model.safetensors")
    cfg = json.loads((src / "config.json").read_text())
    cfg[field] = value
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=field) as err:
        load_checkpoint(str(folder), count_flops=False)
    assert needle in str(err.value) and "config.json" in str(err.value)


def test_config_fields_left_out_take_transformers_defaults():
    from severe_bench.checkpoints.hf_config import parse_config

    base = parse_config({"model_type": "videomae", "qkv_bias": False}, "config.json")  # a transformers 4 name
    assert base.architecture == "vit_b_16" and base.kind == "classification" and base.model_class is None
    assert base.arch_kwargs == {"img_size": 224, "num_frames": 16, "tubelet_size": 2, "patch_size": 16,
                                "qkv_bias": False, "pos_embed": "sincos", "pooling": "mean", "layer_scale": 0.0,
                                "norm_eps": 1e-12, "fc_norm_eps": 1e-5}
    pre = parse_config({"model_type": "videomae", "architectures": ["VideoMAEForPreTraining"], "hidden_size": 384,
                        "num_attention_heads": 6, "intermediate_size": 1536, "use_mean_pooling": False}, "c.json")
    assert pre.architecture == "vit_s_16" and pre.kind == "pretraining"
    with pytest.raises(CheckpointError, match="num_frames 15 is not divisible by tubelet_size 2"):
        parse_config({"model_type": "videomae", "num_frames": 15}, "config.json")


def test_off_grid_clip_equals_a_model_built_for_that_grid(classifier):
    """A 4x32 model fed 8x64 clips == the same weights built for 8x64, here and in transformers."""
    model, root, _ = classifier
    loaded = load_checkpoint(str(root / "safetensors"), count_flops=False).backbone
    x = torch.randn(1, 3, 8, 64, 64, generator=torch.Generator().manual_seed(5))
    built = create_backbone("vit_s_16", **{**loaded.arch_kwargs, "img_size": 64, "num_frames": 8}).eval()
    built.load_state_dict(loaded.state_dict())
    hf_big = transformers.VideoMAEForVideoClassification(
        transformers.VideoMAEConfig(**{**SMALL, "image_size": 64, "num_frames": 8}, num_labels=5)).eval()
    hf_big.load_state_dict(model.state_dict())
    with torch.no_grad():
        off_grid = loaded.forward_features(x)
        assert torch.equal(off_grid, built.forward_features(x))
    assert_rel_close(off_grid, hf_pooled(hf_big, x))


def hub_snapshot(cache: Path, repo: str, src: Path, commit: str = "0123456789abcdef0123456789abcdef01234567") -> Path:
    """A model in the Hub cache layout (models--org--name/refs/main, snapshots/<commit>/...), as huggingface_hub
    leaves it after a download."""
    base = cache / "huggingface" / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(commit)
    for f in src.iterdir():
        os.link(f, snap / f.name)
    return snap


def test_hub_id_resolves_from_the_cache(classifier, tmp_path):
    _, root, expected = classifier
    commit = "0123456789abcdef0123456789abcdef01234567"
    hub_snapshot(tmp_path / "cache", "test-org/tiny-videomae", root / "bin", commit)
    for spec in ("test-org/tiny-videomae", "hf:test-org/tiny-videomae"):
        loaded = load_checkpoint(spec, count_flops=False)
        info = loaded.info
        assert info["source"] == {"hub": "test-org/tiny-videomae", "revision": commit}
        assert info["label"] == "test-org/tiny-videomae" and info["path"].endswith("pytorch_model.bin")
        with torch.no_grad():
            assert_rel_close(loaded.backbone.forward_features(X), expected)
    # a registry entry with a Hub source: the same cache, the entry's name and layout
    entry = REG.get("videomae_vit_s_k400_ft_hf")
    hub_snapshot(tmp_path / "cache", entry.source.hub, root / "safetensors", commit)
    loaded = load_checkpoint(entry.name, count_flops=False)
    assert loaded.info["name"] == entry.name and loaded.info["layout"] == entry.layout
    assert loaded.info["source"]["revision"] == commit
    with torch.no_grad():
        assert_rel_close(loaded.backbone.forward_features(X), expected)
    listed = json.loads(CliRunner().invoke(checkpoints_cli, ["list", "--json"]).output)
    assert next(r for r in listed if r["name"] == entry.name)["local"].endswith("model.safetensors")


def test_hub_id_offline_says_how_to_use_a_local_folder():
    for spec in ("MCG-NJU/videomae-base", "hf:MCG-NJU/videomae-base@main", "videomae_vit_b_k400_hf"):
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(spec, count_flops=False)
        msg = str(err.value)
        assert "'MCG-NJU/videomae-base' is not in the cache" in msg and "HF_HUB_OFFLINE" in msg
        assert "--checkpoint DIR" in msg and "save_pretrained" in msg
    with pytest.raises(CheckpointError, match="neither a registry name, a URL nor an existing file"):
        load_checkpoint("runs/model.pth", count_flops=False)  # a missing relative file is not taken for a Hub id
    for args in (["verify", "MCG-NJU/videomae-base"], ["fetch", "videomae_vit_b_k400_hf"]):
        result = CliRunner().invoke(checkpoints_cli, args)
        assert result.exit_code != 0 and "--checkpoint DIR" in str(result.exception)


def test_registry_hub_entries():
    hub = [e for e in REG.entries.values() if e.source.hub]
    assert {e.source.hub for e in hub} >= {"MCG-NJU/videomae-base", "MCG-NJU/videomae-base-ssv2",
                                           "MCG-NJU/videomae-small-finetuned-kinetics",
                                           "MCG-NJU/videomae-base-finetuned-kinetics"}
    for e in hub:
        assert e.layout in ("transformers_videomae", "transformers_videomae_pretrain") and e.source.sha256 is None
        assert e.source.homepage == f"https://huggingface.co/{e.source.hub}" and e.citation
        assert ("finetuned" in e.source.hub) == (e.layout == "transformers_videomae")
        assert e.architecture == ("vit_s_16" if "small" in e.source.hub else "vit_b_16")
        # loaded above (ViT-S entry) or the same format at another width (config.json sets the width)
        assert e.arch_kwargs == {} and e.quirks() == REG.get("videomae_vit_s_k400_ft_hf").quirks()
    show = CliRunner().invoke(checkpoints_cli, ["show", "videomae_vit_b_k400_hf"])
    assert show.exit_code == 0, show.output
    assert "Hugging Face Hub MCG-NJU/videomae-base" in show.output and "LayerNorm eps 1e-12 (fc_norm 1e-05)" in show.output


@pytest.mark.slow
def test_severe_eval_runs_a_save_pretrained_folder(classifier, tmp_path_factory):
    """`severe eval --checkpoint FOLDER`: the ViT track's linear probe on a tiny generated task (smoke clips of
    8x64 on a model configured for 4x32: the sin-cos table is rebuilt for that grid); the result names the
    weights file and the layout."""
    from severe_bench.cli import cli
    from severe_bench.synth import generate_suite

    root = tmp_path_factory.mktemp("synth")
    generate_suite(root, seed=0, scale="tiny")
    folder = classifier[1] / "safetensors"
    out = tmp_path_factory.mktemp("run")
    r = CliRunner().invoke(cli, ["eval", "--checkpoint", str(folder), "--profile", "smoke", "--workers", "0",
                                 "-t", "synth_motion_linear", "--data-root", str(root), "--out", str(out)])
    assert r.exit_code == 0, r.output + repr(r.exception)
    res = json.loads((out / "synth_motion_linear" / "seed0" / "result.json").read_text())
    ckpt = res["model"]["checkpoint"]
    assert res["protocol"]["track"] == "vit" and res["model"]["architecture"] == "vit_s_16"
    assert ckpt["layout"] == "transformers_videomae" and ckpt["path"] == str(folder / "model.safetensors")
    assert ckpt["name"] == "safetensors" and len(ckpt["sha256"]) == 64 and res["metric"]["value"] is not None


def test_hub_id_without_a_network_answers_at_once(monkeypatch):
    """No network and no offline flag: one TCP connect decides, the cache alone is used and the message
    names the endpoint (instead of huggingface_hub retrying for ~25 s)."""
    import socket

    from severe_bench.checkpoints import hub

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for var in ("HF_HUB_OFFLINE", "SEVERE_OFFLINE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    assert "cannot connect to 127.0.0.1" in hub.hub_unreachable()
    calls = []
    real = hub._download
    monkeypatch.setattr(hub, "_download", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint("MCG-NJU/videomae-base", count_flops=False)
    assert "cannot connect to 127.0.0.1" in str(err.value) and "--checkpoint DIR" in str(err.value)
    assert calls and all(calls), "only the cache was asked (local_files_only)"
