"""One CLI vocabulary: --data-root in every command, JSON errors for --json, quoted hints, the cache documented."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from severe_bench.cli import COMMANDS, cli, main, wants_json
from severe_bench.cli.options import shell_command


def _commands():
    """(full name, click.Command) of every leaf command."""
    out = []

    def walk(name, cmd):
        if isinstance(cmd, click.Group):
            for sub, c in cmd.commands.items():
                walk(f"{name} {sub}", c)
        else:
            out.append((name, cmd))

    for name, target in COMMANDS.items():
        module, attr = target.split(":")
        walk(name, getattr(importlib.import_module(module), attr))
    return out


def test_every_dataset_root_option_is_called_data_root():
    seen = []
    for name, cmd in _commands():
        for p in cmd.params:
            if isinstance(p, click.Option) and ("--root" in p.opts or "--data-root" in p.opts or p.name == "data_root"):
                assert p.opts[0] == "--data-root", f"severe {name}: {p.opts}"
                seen.append(name)
    assert {"data list", "data check", "eval"} <= set(seen)


def test_root_stays_a_hidden_alias(tmp_path):
    root = tmp_path / "ucf" / "ucfTrainTestlist"
    root.mkdir(parents=True)
    (root / "classInd.txt").write_text("1 A\n2 B\n")
    (root / "trainlist01.txt").write_text("A/v_A_g08_c01.avi 1\nB/v_B_g08_c01.avi 2\n")
    (root / "testlist01.txt").write_text("B/v_B_g01_c01.avi\n")
    outs = [CliRunner().invoke(cli, ["data", "list", "ucf101", opt, str(tmp_path / "ucf")]) for opt in
            ("--data-root", "--root")]
    assert all(r.exit_code == 0 for r in outs) and outs[0].output == outs[1].output
    assert "UCF-101/B/v_B_g08_c01.avi,1" in outs[0].output
    helptext = CliRunner().invoke(cli, ["data", "check", "--help"]).output
    assert "--data-root" in helptext and "--root" not in helptext.replace("--data-root", "")


@pytest.mark.parametrize("args, kind", [
    (["data", "check", "ucf101", "--data-root", "{missing}", "--json"], "MissingFileError"),
    (["checkpoints", "show", "no_such_checkpoint", "--json"], "CheckpointError"),
    (["data", "check", "--json"], "usage"),
])
def test_json_commands_print_errors_as_json(args, kind, tmp_path, capsys):
    args = [a.replace("{missing}", str(tmp_path / "nowhere")) for a in args]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code != 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["ok"] is False and doc["error"]["kind"] == kind and doc["error"]["exit_code"] == exit_info.value.code
    assert doc["error"]["message"] and "Traceback" not in captured.err and captured.err.strip()


def test_plain_errors_stay_plain(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["data", "check", "ucf101", "--data-root", str(tmp_path / "nowhere")])
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: data root")


def test_wants_json():
    assert wants_json(["table", "--format", "json"]) and wants_json(["x", "--format=json"])
    assert not wants_json(["table", "--format", "md"]) and not wants_json(["x", "--", "--json"])


def test_printed_hints_quote_paths(tmp_path, capsys):
    site = tmp_path / "my site"
    with pytest.raises(SystemExit):
        main(["leaderboard", "serve", str(site)])
    assert f"`severe leaderboard build --out '{site}'`" in capsys.readouterr().err


def test_hints_are_shell_quoted():
    assert shell_command("severe", "table", "my runs/it's") == "severe table 'my runs/it'\"'\"'s'"
    assert shell_command("severe", "table", Path("runs/a")) == "severe table runs/a"


def test_cache_folder_is_documented_and_settable(tmp_path, monkeypatch):
    from severe_bench.resources import cache_dir

    monkeypatch.setenv("SEVERE_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    assert "SEVERE_CACHE" in CliRunner().invoke(cli, ["--help"]).output
    readme = Path(__file__).resolve().parents[1] / "README.md"
    assert "SEVERE_CACHE" in readme.read_text()
