"""Provenance: the commit (from git, or recorded in a built wheel), libraries, command line, per-pass history."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from severe_bench import __version__
from severe_bench.engine.state import resume_state, save_state, saved_history
from severe_bench.provenance import code_info, code_version, command_line, library_versions

REPO = Path(__file__).resolve().parents[1]


def _git(*args):
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()


needs_git = pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")


@needs_git
def test_checkout_reports_its_commit_and_dirty_flag():
    info = code_info()
    assert info["source"] == "git" and info["commit"] == _git("rev-parse", "HEAD")
    assert info["dirty"] is bool(_git("status", "--porcelain", "--untracked-files=no"))
    assert code_version(info).startswith(f"{info['version']}+g{info['commit'][:7]}")
    assert code_version({**info, "dirty": True}).endswith(".dirty")
    assert code_version({"commit": None}) == info["version"]


def _can_build_wheels() -> bool:
    """``pip wheel --no-build-isolation`` needs setuptools >= 70.1 (bdist_wheel built in) or the wheel package."""
    from importlib import metadata

    try:
        major, minor = (int(x) for x in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    if (major, minor) >= (70, 1):
        return True
    try:
        metadata.version("wheel")
        return major >= 68
    except metadata.PackageNotFoundError:
        return False


@needs_git
@pytest.mark.skipif(not _can_build_wheels(), reason="this environment cannot build wheels offline")
def test_wheel_records_the_build_commit(tmp_path):
    """A wheel has no .git beside the package: the build hook writes the commit into _build_info.py."""
    src = tmp_path / "src"  # a fresh one-commit repository of this tree, so the build never touches the checkout
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard"], capture_output=True,
                            text=True, check=True).stdout.split()
    files = [f for f in listed if not f.startswith("tests/") and (REPO / f).is_file()]
    for rel in files:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes((REPO / rel).read_bytes())
    git = ["git", "-C", str(src), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "tree"], check=True)
    commit = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(wheels), str(src)], capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("severe_bench-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = subprocess.run([sys.executable, "-c", "import json, severe_bench.provenance as p; "
                            "print(json.dumps(p.code_info())); print(p.__file__)"],
                           capture_output=True, text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
                           cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.splitlines()
    assert lines[1].startswith(str(site))  # the installed copy answered, not the checkout
    assert json.loads(lines[0]) == {"version": __version__, "commit": commit, "dirty": False, "source": "build"}


def test_library_versions_name_the_decoder_and_python():
    libs = library_versions()
    assert libs["python"] == "%d.%d.%d" % sys.version_info[:3]
    assert libs["torch"] == torch.__version__.split("+")[0] or torch.__version__.startswith(libs["torch"])
    assert libs["numpy"] and (libs["decord"] or libs["av"])


def test_command_line_is_shell_quoted():
    cmd = command_line(["/x/bin/severe", "eval", "--out", "my runs/a b", "-t", "ucf101"])
    assert cmd["argv"][0] == "severe"
    assert cmd["line"] == "severe eval --out 'my runs/a b' -t ucf101"
    main = command_line([str(REPO / "severe_bench" / "__main__.py"), "table"])
    assert main["argv"][:3] == ["python", "-m", "severe_bench"]


def test_history_survives_a_resume(tmp_path):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.25)
    hist = [{"pass": 1, "loss": 2.0, "lr": 0.25, "seconds": 1.23, "clips_per_s": 8.0}]
    save_state(tmp_path / "state.pt", model, opt, 1, {}, history=hist)
    start, _ = resume_state(tmp_path / "state.pt", model, opt, 3, lambda _: None)
    assert start == 1 and saved_history(tmp_path / "state.pt") == hist
