"""bench/throughput.py's own plumbing: the generated videos and what a time limit leaves behind. (The figures it
measures are not tested here: speed is claimed only from bench runs.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

throughput = pytest.importorskip("throughput")


def test_generated_videos_depend_only_on_their_index(tmp_path):
    paths, kbit = throughput.make_videos(tmp_path, 3, seconds=0.4)
    assert [p.name for p in paths] == ["v_000.mp4", "v_001.mp4", "v_002.mp4"] and kbit > 0
    first = {p.name: p.read_bytes() for p in paths}
    paths[1].unlink()
    throughput.make_videos(tmp_path, 3, seconds=0.4)  # only the missing one is encoded again, the same bytes
    assert {p.name: p.read_bytes() for p in paths} == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v_000.mp4", "v_001.mp4", "v_002.mp4"]  # no partial files


def test_markdown_of_a_stopped_run_names_what_is_missing():
    report = {"device": "CPU x", "date": "2026-12-03", "command": "python bench/throughput.py", "videos": 1,
              "video_kbit_s": 470.0, "workers": 0, "sizes": "small", "clock": "wall", "results": {},
              "stopped": "stopped by SIGTERM before measuring: r2plus1d_18, decode at training resolution"}
    text = throughput.markdown(report)
    assert "**Incomplete:** stopped by SIGTERM before measuring: r2plus1d_18" in text
    assert "Decode at training resolution" not in text


def test_a_time_limit_keeps_what_was_measured(tmp_path):
    out = tmp_path / "t.json"
    md = tmp_path / "RESULTS.md"
    proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "throughput.py"), "--videos", "1", "--workers", "0",
                             "--cache", str(tmp_path / "videos"), "--json", str(out), "--append-results", str(md)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # the handler is installed once the videos exist: stop it during the first measurement, as `timeout` would
    assert "videos 320x240" in proc.stdout.readline()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 124, err
    report = json.loads(out.read_text())
    assert report["stopped"].startswith("stopped by SIGTERM before measuring: r2plus1d_18")
    assert "**Incomplete:**" in md.read_text()
