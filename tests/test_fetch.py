"""Downloads against an HTTP server on 127.0.0.1: resume with Range, sha256 checks, the cache, registry fetch
of direct files and archive members, and URL specs given to load_checkpoint."""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from severe_bench.checkpoints import load_checkpoint
from severe_bench.checkpoints.fetch import download, url_cache_path
from severe_bench.cli.checkpoints_cmd import checkpoints as checkpoints_cli
from severe_bench.errors import CheckpointError
from severe_bench.models import create_backbone
from severe_bench.resources import resource_path


class Server:
    """Serves ``files``; ``truncate[path] = n`` cuts the next response after n bytes; ``honour_range`` off makes
    it answer every request with the whole file (200)."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.truncate: dict[str, int] = {}
        self.honour_range = True
        self.content_type: dict[str, str] = {}
        self.no_length: set[str] = set()  # paths answered without Content-Length (the body ends at close)
        self.log: list[tuple[str, str | None, int]] = []  # (path, Range header, status)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.files.get(self.path)
                rng = self.headers.get("Range")
                if data is None:
                    server.log.append((self.path, rng, 404))
                    self.send_error(404)
                    return
                start = 0
                m = re.fullmatch(r"bytes=(\d+)-", rng or "")
                if m and server.honour_range:
                    start = int(m.group(1))
                    if start >= len(data):
                        server.log.append((self.path, rng, 416))
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    server.log.append((self.path, rng, 206))
                else:
                    self.send_response(200)
                    server.log.append((self.path, rng, 200))
                body = data[start:]
                if self.path in server.content_type:
                    self.send_header("Content-Type", server.content_type[self.path])
                if self.path not in server.no_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.truncate.pop(self.path, None)
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SEVERE_OFFLINE", raising=False)
    return tmp_path / "cache"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_interrupted_download_resumes_with_range(server, tmp_path):
    data = os.urandom(3 * 2**20 + 17)
    server.files["/big.bin"] = data
    server.truncate["/big.bin"] = 2**20 + 5
    dest = tmp_path / "big.bin"
    with pytest.raises(CheckpointError, match="run the same command again to resume"):
        download(server.url + "/big.bin", dest, sha256=sha(data))
    part = dest.with_name("big.bin.part")
    have = part.stat().st_size
    assert not dest.exists() and 0 < have < len(data)
    download(server.url + "/big.bin", dest, sha256=sha(data))
    assert dest.read_bytes() == data and not part.exists()
    assert server.log[-1] == ("/big.bin", f"bytes={have}-", 206)  # only the rest was fetched


def test_server_without_range_support_restarts(server, tmp_path):
    data = os.urandom(2**20 + 3)
    server.files["/f.bin"] = data
    server.truncate["/f.bin"] = 1000
    server.honour_range = False
    dest = tmp_path / "f.bin"
    with pytest.raises(CheckpointError):
        download(server.url + "/f.bin", dest)
    download(server.url + "/f.bin", dest)
    assert dest.read_bytes() == data
    assert server.log[-1][2] == 200


def test_complete_partial_file_and_416(server, tmp_path):
    data = b"x" * 5000
    server.files["/done.bin"] = data
    dest = tmp_path / "done.bin"
    dest.with_name("done.bin.part").write_bytes(data)
    download(server.url + "/done.bin", dest, sha256=sha(data))
    assert dest.read_bytes() == data and server.log[-1][2] == 416


def test_sha256_mismatch_discards_download(server, tmp_path):
    server.files["/bad.bin"] = b"not the published weights"
    dest = tmp_path / "bad.bin"
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        download(server.url + "/bad.bin", dest, sha256="0" * 64)
    assert not dest.exists() and not dest.with_name("bad.bin.part").exists()
    with pytest.raises(CheckpointError, match="HTTP 404"):
        download(server.url + "/missing.bin", tmp_path / "m.bin")
    server.files["/drive"] = b"<!DOCTYPE html><html>Google Drive can't scan this file for viruses</html>"
    server.content_type["/drive"] = "text/html; charset=utf-8"
    with pytest.raises(CheckpointError, match="web page instead of the file"):
        download(server.url + "/drive", tmp_path / "drive.pth")
    assert not (tmp_path / "drive.pth").exists()


@pytest.fixture(scope="module")
def vit_file_bytes() -> bytes:
    """A VideoMAE fine-tuned ViT-S checkpoint ({'model': ..., 'epoch': ...}) with random weights, as bytes."""
    with torch.device("meta"):
        model = create_backbone("vit_s_16")
    model = model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(v.shape, generator=g) * 0.02 for k, v in model.state_dict().items()}
    sd["head.weight"] = torch.zeros(400, 384)
    sd["head.bias"] = torch.zeros(400)
    buf = io.BytesIO()
    torch.save({"model": sd, "epoch": 99}, buf)
    return buf.getvalue()


def write_registry(home: Path, url: str, direct_sha: str, member_sha: str) -> None:
    """A registry with the real layouts and two test entries served by the local server."""
    data = yaml.safe_load(resource_path("checkpoints.yaml").read_text())
    data["archives"] = {"test_zip": {"url": f"{url}/bundle.zip", "file": "bundle.zip", "format": "zip"}}
    common = {"architecture": "vit_s_16", "layout": "videomae_finetune", "citation": "test entry"}
    data["checkpoints"] = {
        "tiny_direct": {**common, "source": {"url": f"{url}/vit.pth", "file": "vit.pth", "sha256": direct_sha,
                                             "homepage": url}},
        "tiny_member": {**common, "source": {"archive": "test_zip", "member": "checkpoints_pretraining/vit/model.pth",
                                             "file": "model.pth", "sha256": member_sha, "homepage": url}},
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / "checkpoints.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def test_fetch_registry_entries_into_the_cache(server, tmp_path, monkeypatch, vit_file_bytes, cache):
    blob = vit_file_bytes
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("checkpoints_pretraining/readme.txt", "weights")
        zf.writestr("checkpoints_pretraining/vit/model.pth", blob)
    server.files["/vit.pth"] = blob
    server.files["/bundle.zip"] = zbuf.getvalue()
    server.truncate["/vit.pth"] = len(blob) // 3
    home = tmp_path / "home"
    write_registry(home, server.url, sha(blob), sha(blob))
    monkeypatch.setenv("SEVERE_HOME", str(home))

    runner = CliRunner()
    first = runner.invoke(checkpoints_cli, ["fetch", "tiny_direct"])
    assert first.exit_code != 0 and "resume" in str(first.exception)  # the connection dropped mid-file
    second = runner.invoke(checkpoints_cli, ["fetch", "tiny_direct", "tiny_member"])
    assert second.exit_code == 0, second.output
    assert f"sha256 {sha(blob)} (verified)" in second.output
    assert any(r == f"bytes={len(blob) // 3}-" and status == 206 for _, r, status in server.log)
    direct = cache / "checkpoints" / "tiny_direct" / "vit.pth"
    member = cache / "checkpoints" / "tiny_member" / "model.pth"
    assert direct.read_bytes() == blob and member.read_bytes() == blob

    monkeypatch.setenv("SEVERE_OFFLINE", "1")  # from here on nothing may be downloaded
    n_requests = len(server.log)
    loaded = load_checkpoint("tiny_member", count_flops=False)
    assert loaded.info["missing"] == [] and loaded.info["sha256"] == sha(blob)
    assert loaded.info["path"] == str(member) and loaded.info["source"]["archive"] == "test_zip"
    listed = runner.invoke(checkpoints_cli, ["list"])
    assert listed.exit_code == 0 and "tiny_member" in listed.output
    assert len(server.log) == n_requests

    member.write_bytes(blob[:-10] + b"0123456789")  # a corrupted cache copy is refused
    with pytest.raises(CheckpointError, match="does not match the registry"):
        load_checkpoint("tiny_member", count_flops=False)


def test_checkpoint_given_as_url(server, vit_file_bytes):
    server.files["/some/run/ckpt.pth"] = vit_file_bytes
    url = server.url + "/some/run/ckpt.pth"
    loaded = load_checkpoint(url, count_flops=False)
    assert loaded.info["layout"] == "videomae_finetune" and loaded.info["missing"] == []
    assert loaded.info["source"] == {"url": url} and Path(loaded.info["path"]) == url_cache_path(url)
    again = load_checkpoint(url, count_flops=False)  # cached: no second download
    assert again.info["sha256"] == loaded.info["sha256"]
    assert [p for p, _, _ in server.log].count("/some/run/ckpt.pth") == 1
