"""The ImageNet image representation of representation bias: torchvision ResNet-18/50 checkpoints (registry,
exact loading, offline message), applied TSN-style to real encoded videos, features cached once."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import torchvision

from severe_bench.checkpoints import load_checkpoint, load_registry
from severe_bench.checkpoints.detect import expected_shapes, infer_architecture
from severe_bench.data.sample import Sample
from severe_bench.errors import CheckpointError
from severe_bench.features import decode_tsn_frames, extract_features, tsn_indices, tsn_spec
from severe_bench.registry import get_task
from severe_bench.synth.encode import write_video
from severe_bench.video.transforms import test_transform

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "channel_order": "RGB"}


@pytest.fixture(scope="module")
def r18_file(tmp_path_factory):
    """A ResNet-18 state dict exactly as torchvision writes it (random weights; ImageNet classifier included)."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so every tensor matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("r18") / "resnet18_test.pth"
    torch.save(model.state_dict(), path)
    return path, model.eval()


def _per_frame_features(model, frames: torch.Tensor) -> torch.Tensor:
    """torchvision's own network without the classifier, one frame at a time: (T, C, H, W) -> (T, 512)."""
    trunk = torch.nn.Sequential(*list(model.children())[:-1])
    with torch.no_grad():
        return torch.cat([trunk(f[None]).flatten(1) for f in frames])


def test_torchvision_resnet18_state_dict_loads_exactly(r18_file, one_thread):
    path, model = r18_file
    loaded = load_checkpoint(str(path), count_flops=False)
    info = loaded.info
    assert (info["architecture"], info["layout"]) == ("resnet18", "torchvision_image")
    assert info["missing"] == [] and info["unexpected"] == [] and info["shape_mismatch"] == []
    assert info["loaded"] == info["expected"] == len(model.state_dict()) - 2  # all but fc.weight / fc.bias
    assert info["dropped"] == {"fc.weight": 1, "fc.bias": 1}
    ours = loaded.backbone.state_dict()
    for key, value in model.state_dict().items():
        if not key.startswith("fc."):
            assert torch.equal(ours[key], value), key
    # a clip (B, C, T, H, W): every frame through the 2D net, pooled features averaged over the frames
    x = torch.randn(2, 3, 3, 48, 48)
    with torch.no_grad():
        got = loaded.backbone.forward_features(x)
    expected = torch.stack([_per_frame_features(model, x[b].transpose(0, 1)).mean(0) for b in range(2)])
    assert got.shape == (2, 512) and torch.allclose(got, expected, atol=1e-5)


def test_resnet50_key_layout_is_recognised():
    with torch.device("meta"):
        sd = torchvision.models.resnet50().state_dict()
    assert infer_architecture(sd) == ("resnet50", {})
    backbone = {k: tuple(v.shape) for k, v in sd.items() if not k.startswith("fc.")}
    assert expected_shapes("resnet50", {}) == backbone
    with torch.device("meta"):
        assert infer_architecture(torchvision.models.resnet34().state_dict()) is None  # not a registered depth


def test_registry_entries_are_torchvisions_official_files():
    reg = load_registry()
    for name, arch, url in (("imagenet_resnet18", "resnet18", torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url),
                            ("imagenet_resnet50", "resnet50", torchvision.models.ResNet50_Weights.IMAGENET1K_V1.url)):
        e = reg.get(name)
        assert (e.architecture, e.layout, e.source.url) == (arch, "torchvision_image", url)
        prefix = re.search(r"-([0-9a-f]{8})\.pth$", url).group(1)  # the publisher's hash prefix in the file name
        assert e.source.sha256_prefix == prefix and e.source.file == url.rsplit("/", 1)[1]
        assert e.normalisation == IMAGENET


def test_offline_message_names_the_file_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SEVERE_OFFLINE", "1")
    monkeypatch.delenv("SEVERE_CHECKPOINTS_PATH", raising=False)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint("imagenet_resnet18", count_flops=False)
    msg = str(err.value)
    assert "resnet18-f37072fd.pth" in msg and "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert "severe checkpoints fetch imagenet_resnet18" in msg and "SEVERE_CHECKPOINTS_PATH" in msg


def test_a_file_that_is_not_the_published_one_is_refused(r18_file, tmp_path, monkeypatch):
    folder = tmp_path / "manual"
    folder.mkdir()
    (folder / "resnet18-f37072fd.pth").write_bytes(r18_file[0].read_bytes())  # right name, other weights
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SEVERE_CHECKPOINTS_PATH", str(folder))
    with pytest.raises(CheckpointError, match="does not match the registry"):
        load_checkpoint("imagenet_resnet18", count_flops=False)


# --- TSN-style features on real encoded videos --------------------------------------------------------

def test_tsn_indices_are_segment_centres():
    assert tsn_indices(37, 4).tolist() == [4, 13, 23, 32]  # segments of 9.25 frames, their middles
    assert tsn_indices(80, 8).tolist() == [5, 15, 25, 35, 45, 55, 65, 75]
    assert tsn_indices(40, 2, 3).tolist() == [9, 10, 11, 28, 29, 30]  # a run of 3 from each half's middle
    assert tsn_indices(3, 8).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]  # shorter than the segments: frames repeat


def _grey_video(path, n: int, size: int = 48):
    """Frame i is uniformly grey at level 6*i, so a decoded frame tells which frame it is."""
    frames = np.zeros((n, size, size, 3), np.uint8)
    for i in range(n):
        frames[i] = 6 * i
    frames[:, : size // 4, : size // 4, 0] = 250  # some structure for the network
    return write_video(path, frames, fps=10)


@pytest.fixture(scope="module")
def grey_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("tsn")
    samples = []
    for j, n in enumerate((37, 24, 30)):
        _grey_video(root / "videos" / f"v{j}.avi", n)
        samples.append(Sample(video=f"videos/v{j}.avi", label=j % 2, id=f"v{j}"))
    return root, samples


def test_tsn_frames_decoded_from_a_real_video(grey_videos):
    root, samples = grey_videos
    frames = decode_tsn_frames(root / samples[0].video, 4)
    assert frames.shape == (4, 48, 48, 3)
    levels = frames[:, 24:, 24:].reshape(4, -1).mean(1)
    assert np.allclose(levels, 6 * np.array([4, 13, 23, 32]), atol=3)


def test_tsn_features_average_frames_and_are_cached(grey_videos, r18_file, tmp_path, one_thread):
    root, samples = grey_videos
    path, model = r18_file
    loaded = load_checkpoint(str(path), count_flops=False)
    task = get_task("ucf101")  # only names the cache entry here
    spec = tsn_spec(4, 1, resize=36, crop=32, normalisation=IMAGENET)
    logs = []
    fs = extract_features(loaded, task, root, samples, ["layer4"], tmp_path, split="train", mode="tsn", spec=spec,
                          batch_size=2, log=logs.append)
    assert fs.array("layer4").shape == (3, 512) and fs.failed == []
    # by hand: the segment-centre frames through ImageNet normalisation and torchvision's network, averaged
    for i, s in enumerate(samples):
        frames = decode_tsn_frames(root / s.video, 4)
        clip = test_transform(resize_short=36, crop=32, **{k: IMAGENET[k] for k in ("mean", "std")})(frames)
        expected = _per_frame_features(model, clip.transpose(0, 1)).mean(0).numpy()
        assert np.allclose(fs.array("layer4")[i], expected, atol=1e-4)
    meta = json.loads((fs.directory / "meta.json").read_text())
    assert meta["mode"] == "tsn" and meta["clip"]["segments"] == 4 and meta["clip"]["frames_per_segment"] == 1
    prov = meta["provenance"]
    assert prov["checkpoint"]["sha256"] == loaded.info["sha256"] and prov["code_version"] and prov["created_at"]
    # a second call reuses the cache (nothing decoded or written again)
    stamp = (fs.directory / "meta.json").stat().st_mtime_ns
    logs.clear()
    again = extract_features(loaded, task, root, samples, ["layer4"], tmp_path, split="train", mode="tsn",
                             spec=spec, batch_size=2, log=logs.append)
    assert again.directory == fs.directory and logs == [f"features: reusing {fs.directory}"]
    assert (fs.directory / "meta.json").stat().st_mtime_ns == stamp
    assert np.array_equal(again.array("layer4"), fs.array("layer4"))
    # another split, or another sampling, is another cache entry
    other = extract_features(loaded, task, root, samples[:2], ["layer4"], tmp_path, split="test", mode="tsn",
                             spec=tsn_spec(2, 1, resize=36, crop=32, normalisation=IMAGENET), batch_size=2)
    assert other.directory != fs.directory


def test_registry_fetch_resumes_and_loads_by_name(r18_file, tmp_path, monkeypatch):
    """The imagenet_resnet18 entry through checkpoints/fetch.py, served locally under the same file name: an
    interrupted download resumes with Range, the hash prefix in the file name is checked, the name loads."""
    import hashlib

    import yaml

    from severe_bench.resources import resource_path
    from test_fetch import Server

    blob = r18_file[0].read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    server = Server()
    try:
        server.files["/models/resnet18-f37072fd.pth"] = blob
        server.truncate["/models/resnet18-f37072fd.pth"] = len(blob) // 2
        data = yaml.safe_load(resource_path("checkpoints.yaml").read_text())
        entry = data["checkpoints"]["imagenet_resnet18"]
        entry["source"].update(url=f"{server.url}/models/resnet18-f37072fd.pth", sha256_prefix=digest[:8])
        home = tmp_path / "home"
        home.mkdir()
        (home / "checkpoints.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        monkeypatch.setenv("SEVERE_HOME", str(home))
        monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
        monkeypatch.delenv("SEVERE_OFFLINE", raising=False)
        monkeypatch.delenv("SEVERE_CHECKPOINTS_PATH", raising=False)
        with pytest.raises(CheckpointError, match="resume"):
            load_checkpoint("imagenet_resnet18", count_flops=False)
        loaded = load_checkpoint("imagenet_resnet18", count_flops=False)
        assert any(r == f"bytes={len(blob) // 2}-" and status == 206 for _, r, status in server.log)
        assert loaded.info["sha256"] == digest and loaded.info["label"] == "ImageNet ResNet-18"
        assert loaded.info["path"].endswith("checkpoints/imagenet_resnet18/resnet18-f37072fd.pth")
        assert loaded.info["missing"] == [] and loaded.info["architecture"] == "resnet18"
    finally:
        server.close()


def test_eval_refuses_an_image_model(r18_file, tmp_path, capsys):
    from severe_bench.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--checkpoint", str(r18_file[0]), "--task", "synth_motion", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_.value.code != 0 and "2D image model (resnet18)" in err and "severe bias" in err
    assert "Traceback" not in err and not (tmp_path / "o" / "synth_motion").exists()
