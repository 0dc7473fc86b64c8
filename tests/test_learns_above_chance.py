"""bench/learns_above_chance.py's untrained bar (what bench/gpu_check.sh reports for the counting tasks): the
task files it writes train for 0 passes and change nothing else, the engine scores the untrained model under
them, and a row is held to the stricter of chance and that score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from severe_bench.cli import cli
from severe_bench.registry import get_task


def _result(run_dir: Path, task: str, metric: str, value: float, gts: list[float], seed: int = 0) -> None:
    d = run_dir / task / f"seed{seed}"
    d.mkdir(parents=True)
    (d / "result.json").write_text(json.dumps({"task": {"id": task}, "seed": seed, "metric": {"name": metric, "value": value},
                                               "data": {}, "wall_time_s": 1.0}))
    (d / "predictions.json").write_text(json.dumps({"videos": {f"v{i}": {"gt": g, "pred": g} for i, g in enumerate(gts)}}))


def test_untrained_score_raises_the_bar(learns_above_chance, tmp_path):
    gts = [2.0, 4.0, 6.0, 8.0]
    chance = (3 / 2 + 1 / 4 + 1 / 6 + 3 / 8) / 4  # the median guess, 5: mean(|5 - gt| / gt)
    _result(tmp_path / "run", "synth_count", "counting_error", 0.40, gts)
    plain = learns_above_chance.rows(tmp_path / "run")[0]
    assert plain["chance"] == pytest.approx(chance) and plain["untrained"] is None
    assert plain["gap_closed"] == pytest.approx((0.40 - chance) / (0 - chance)) and plain["learns"] is True

    # an untrained model that already counts better than the median guess: the row must beat it instead
    _result(tmp_path / "untrained", "synth_count", "counting_error", 0.45, gts)
    row = learns_above_chance.rows(tmp_path / "run", tmp_path / "untrained")[0]
    assert row["untrained"] == 0.45 and row["bar"] == 0.45
    assert row["gap_closed"] == pytest.approx((0.40 - 0.45) / (0 - 0.45)) and row["learns"] is False

    # an untrained score worse than chance leaves chance as the bar; higher-is-better metrics take the larger
    assert learns_above_chance.stricter("counting_error", chance, 0.9) == chance
    assert learns_above_chance.stricter("top1", 16.7, 20.0) == 20.0
    assert learns_above_chance.stricter("top1", 16.7, None) == 16.7


def test_untrained_run_of_another_metric_is_refused(learns_above_chance, tmp_path):
    _result(tmp_path / "run", "synth_count", "counting_error", 0.40, [2.0, 4.0])
    _result(tmp_path / "untrained", "synth_count", "obo_accuracy", 0.3, [2.0, 4.0])
    with pytest.raises(SystemExit, match="obo_accuracy"):
        learns_above_chance.rows(tmp_path / "run", tmp_path / "untrained")


def test_untrained_task_files_score_the_seed_weights(learns_above_chance, tiny_suite, tmp_path, monkeypatch):
    dest = tmp_path / "tasks_untrained"
    assert learns_above_chance.make_untrained_tasks(dest) == ["synth_count"]
    full = get_task("synth_count")
    monkeypatch.setenv("SEVERE_TASKS_DIR", str(dest))
    untrained = get_task("synth_count")
    assert untrained.protocol["schedule"]["passes"] == 0
    assert {**untrained.protocol, "schedule": full.protocol["schedule"]} == full.protocol
    assert untrained.protocol_hash != full.protocol_hash
    other = get_task("synth_motion").protocol_hash  # a task that is not counting: untouched
    monkeypatch.delenv("SEVERE_TASKS_DIR")
    assert get_task("synth_motion").protocol_hash == other

    monkeypatch.setenv("SEVERE_TASKS_DIR", str(dest))
    out = tmp_path / "run"
    r = CliRunner().invoke(cli, ["eval", "--checkpoint", "scratch", "-t", "synth_count", "--workers", "0",
                                 "--data-root", str(tiny_suite), "--out", str(out)])
    assert r.exit_code == 0, r.output + repr(r.exception)
    res = json.loads((out / "synth_count" / "seed0" / "result.json").read_text())
    assert res["engine"]["history"] == [] and res["metrics"]["num_scored"] > 0
    scores = learns_above_chance.untrained_scores(out)
    assert scores == {("synth_count", 0): ("counting_error", res["metric"]["value"])}
