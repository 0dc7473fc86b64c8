"""Checkpoint hashes: the first verified download is locked, a later different one is reported, publisher
prefixes (torchvision file names) are checked, and `checkpoints list` says which copies are verified."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
import yaml
from click.testing import CliRunner

from severe_bench.checkpoints import hashlock
from severe_bench.checkpoints.fetch import fetch
from severe_bench.checkpoints.registry import load_registry
from severe_bench.cli.checkpoints_cmd import checkpoints as checkpoints_cli
from severe_bench.errors import CheckpointError
from severe_bench.resources import resource_path

from test_fetch import cache, server, vit_file_bytes  # noqa: F401 (fixtures: cache is autouse)


def _registry_with(home, entries: dict):
    data = yaml.safe_load(resource_path("checkpoints.yaml").read_text())
    common = {"architecture": "r2plus1d_18", "layout": "torchvision", "citation": "test entry"}
    data["checkpoints"] = {name: {**common, "source": src} for name, src in entries.items()}
    home.mkdir(parents=True, exist_ok=True)
    (home / "checkpoints.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_first_download_is_locked_and_a_changed_file_is_reported(server, tmp_path, monkeypatch, cache, capsys):
    first, changed = os.urandom(4096), os.urandom(4096)
    server.files["/w.pth"] = first
    home = tmp_path / "home"
    _registry_with(home, {"unhashed": {"url": f"{server.url}/w.pth", "file": "w.pth", "sha256": None}})
    monkeypatch.setenv("SEVERE_HOME", str(home))
    runner = CliRunner()
    listed = json.loads(runner.invoke(checkpoints_cli, ["list", "--json"]).output)
    (row,) = [r for r in listed if r["name"] == "unhashed"]
    assert row["hash_check"] == "none" and row["verified"] is False and row["local"] is None

    out = runner.invoke(checkpoints_cli, ["fetch", "unhashed"])
    assert out.exit_code == 0, out.output
    lock = hashlock.read_lock()
    assert lock["unhashed"]["sha256"] == hashlib.sha256(first).hexdigest()
    assert lock["unhashed"]["source"] == f"{server.url}/w.pth" and lock["unhashed"]["size"] == 4096
    assert hashlock.lock_path() == cache / "checkpoints" / "sha256.lock.json"
    listed = json.loads(runner.invoke(checkpoints_cli, ["list", "--json"]).output)
    (row,) = [r for r in listed if r["name"] == "unhashed"]
    assert row["hash_check"] == "lock" and row["verified"] is True
    assert row["locked_sha256"] == hashlib.sha256(first).hexdigest()
    table = runner.invoke(checkpoints_cli, ["list"]).output
    assert any(line.startswith("unhashed") and "verified" in line and "lock" in line for line in table.splitlines())

    again = runner.invoke(checkpoints_cli, ["fetch", "--force", "unhashed"])
    assert again.exit_code == 0 and "same as the first download" in again.output

    server.files["/w.pth"] = changed  # the publisher replaced the file
    capsys.readouterr()
    fetch(load_registry().get("unhashed"), load_registry(), force=True)
    err = capsys.readouterr().err
    assert "warning: unhashed" in err and hashlib.sha256(changed).hexdigest() in err
    assert hashlib.sha256(first).hexdigest() in err
    assert hashlock.read_lock()["unhashed"]["sha256"] == hashlib.sha256(first).hexdigest()  # the first stays

    # a cached copy that is used (no download) is compared with the lock too
    from severe_bench.checkpoints.loader import resolve

    resolve("unhashed", load_registry())
    assert "not the " + hashlib.sha256(first).hexdigest() in capsys.readouterr().err
    (cache / "checkpoints" / "unhashed" / "w.pth").write_bytes(first)
    resolve("unhashed", load_registry())
    assert "warning" not in capsys.readouterr().err


def test_publisher_prefix_in_torchvision_names():
    assert hashlock.publisher_sha256_prefix("https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth") == "91a641e6"
    assert hashlock.publisher_sha256_prefix("https://download.pytorch.org/models/resnet50-0676ba61.pth") == "0676ba61"
    assert hashlock.publisher_sha256_prefix("https://example.org/models/r2plus1d_18-91a641e6.pth") is None
    assert hashlock.publisher_sha256_prefix("https://download.pytorch.org/models/plain.pth") is None
    # every registry entry served from there states the same prefix as its file name
    for e in load_registry().entries.values():
        stated = hashlock.publisher_sha256_prefix(e.source.url)
        if stated:
            assert e.source.sha256_prefix in (None, stated), e.name


def test_a_download_that_contradicts_its_name_is_refused(server, tmp_path, monkeypatch):
    monkeypatch.setattr(hashlock, "HASH_NAMING_HOSTS", ("127.0.0.1",))  # the local server stands for the hub
    data = os.urandom(2048)
    good = hashlib.sha256(data).hexdigest()[:8]
    server.files[f"/models/w-{good}.pth"] = data
    server.files["/models/v-00000000.pth"] = data
    home = tmp_path / "home"
    _registry_with(home, {"named_ok": {"url": f"{server.url}/models/w-{good}.pth", "file": "w.pth"},
                          "named_bad": {"url": f"{server.url}/models/v-00000000.pth", "file": "v.pth"}})
    monkeypatch.setenv("SEVERE_HOME", str(home))
    reg = load_registry()
    assert fetch(reg.get("named_ok"), reg).read_bytes() == data
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        fetch(reg.get("named_bad"), reg)
    assert "named_bad" not in hashlock.read_lock()  # a refused download is never locked


def test_verify_reports_the_lock(server, tmp_path, monkeypatch, cache, vit_file_bytes):
    import io

    import torch

    server.files["/vit.pth"] = vit_file_bytes
    home = tmp_path / "home"
    _registry_with(home, {"vit_unhashed": {"url": f"{server.url}/vit.pth", "file": "vit.pth"}})
    data = yaml.safe_load((home / "checkpoints.yaml").read_text())
    data["checkpoints"]["vit_unhashed"].update(architecture="vit_s_16", layout="videomae_finetune")
    (home / "checkpoints.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("SEVERE_HOME", str(home))
    runner = CliRunner()
    assert runner.invoke(checkpoints_cli, ["fetch", "vit_unhashed"]).exit_code == 0
    report = json.loads(runner.invoke(checkpoints_cli, ["verify", "vit_unhashed", "--json"]).output)
    assert report["ok"] and report["locked_sha256"] == hashlib.sha256(vit_file_bytes).hexdigest()
    assert report["matches_lock"] is True
    # the same weights saved again (other bytes) in place of the cached copy: loadable, but not the locked file
    doc = torch.load(io.BytesIO(vit_file_bytes), weights_only=True)
    doc["epoch"] = 100
    torch.save(doc, cache / "checkpoints" / "vit_unhashed" / "vit.pth")
    out = runner.invoke(checkpoints_cli, ["verify", "vit_unhashed"])
    assert "hash lock: DIFFERS from the first download" in out.output
