"""Official counts (PROTOCOL.md §8): each task declares them, `data check` compares and explains, results
record found/official counts, and tables mark a number computed on an incomplete dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from severe_bench import registry
from severe_bench.cli import cli
from severe_bench.data.completeness import compare_counts, completeness
from severe_bench.registry import protocol_hash_of
from severe_bench.report import build_table, load_results
from severe_bench.report.render import render

REALFILES = Path(__file__).resolve().parents[2] / "shared" / "realfiles"

OFFICIAL = {  # the figures: train, test, classes
    "ucf101": (9537, 3783, 101), "ucf101_1k": (9537, 3783, 101), "hmdb51": (3570, 1530, 51),
    "gym99": (20484, 8521, 99), "gym99_1k": (20484, 8521, 99), "gym288": (22671, 9646, 288),
    "fx_s1": (1882, 777, 11), "ub_s1": (3511, 1471, 15), "ssv2": (168913, 24777, 174),
    "charades": (7985, 1863, 157), "diving48": (15027, 1970, 48), "ntu60": (40320, 16560, 60),
    "ucfrep": (421, 105, None),
}


@pytest.mark.parametrize("task_id", sorted(OFFICIAL))
def test_task_files_declare_the_official_counts(task_id):
    off = registry.get_task(task_id).dataset["official"]
    train, test, classes = OFFICIAL[task_id]
    assert (off["train"], off["test"], off.get("classes")) == (train, test, classes)


def test_official_counts_do_not_enter_the_protocol_hash(tmp_path, monkeypatch):
    import shutil

    shutil.copytree(registry.tasks_dir(), tmp_path / "tasks")
    before = registry.get_task("hmdb51").protocol_hash
    path = tmp_path / "tasks" / "hmdb51.yaml"
    path.write_text(path.read_text().replace("train: 3570", "train: 3571"))
    monkeypatch.setenv("SEVERE_TASKS_DIR", str(tmp_path / "tasks"))
    assert registry.get_task("hmdb51").dataset["official"]["train"] == 3571
    assert registry.get_task("hmdb51").protocol_hash == before


def test_a_finegym_v11_list_is_named():
    rep = compare_counts(registry.get_task("gym99"), {"train": 26320, "test": 8521, "classes": 99})
    assert not rep["matches"]
    assert rep["differences"] == [
        "train: 26320 videos listed, FineGym v1.0 (gym99_train.txt / gym99_val.txt), as SEVERE used has 20484 "
        "(+5836): this looks like the FineGym v1.1 list (gym99_train_element_v1.1.txt renamed); SEVERE used v1.0 "
        "with 20484 training clips"]


def test_completeness_reasons():
    task = registry.get_task("hmdb51")
    ok = completeness(task, {"train": 3570, "test": 1530, "classes": 51}, {"train": 0, "test": 0})
    assert ok["complete"] and ok["reasons"] == []
    bad = completeness(task, {"train": 3570, "test": 1500, "classes": 51}, {"train": 2, "test": 0}, unreadable=1)
    assert not bad["complete"]
    assert bad["reasons"] == [
        "test: 1500 videos listed, HMDB51 split 1 (testTrainMulti_7030_splits) has 1530 (-30): a shortened or partial list",
        "train: 2 of 3570 listed videos missing on disk", "1 videos could not be decoded"]


def _real(*parts):
    path = REALFILES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (official files are not part of the project)")
    return path


def test_data_check_explains_a_renamed_finegym_v11_list(tmp_path):
    ann = _real("finegym", "annotations")
    root = tmp_path / "finegym"
    (root / "annotations").mkdir(parents=True)
    # the v1.1 list saved under the v1.0 name, as a user might (links, never copies of the official files)
    (root / "annotations" / "gym99_train.txt").symlink_to(ann / "gym99_train_element_v1.1.txt")
    (root / "annotations" / "gym99_val.txt").symlink_to(ann / "gym99_val.txt")
    res = CliRunner().invoke(cli, ["data", "check", "gym99", "--root", str(root)], catch_exceptions=False)
    assert res.exit_code == 1
    assert "[train] samples: 26320" in res.output
    assert "this looks like the FineGym v1.1 list" in res.output and "SEVERE used v1.0" in res.output


def test_data_check_on_the_official_lists_matches_the_counts():
    root = _real("hmdb51")
    res = CliRunner().invoke(cli, ["data", "check", "hmdb51", "--root", str(root), "--json"], catch_exceptions=False)
    rep = json.loads(res.stdout)
    assert rep["official"]["matches"] and rep["official"]["differences"] == []
    assert rep["official"]["found"] == {"train": 3570, "test": 1530, "classes": 51}
    assert rep["ok"] is False and rep["official"]["missing"] == {"train": 3570, "test": 1530}  # no videos here
    text = CliRunner().invoke(cli, ["data", "check", "hmdb51", "--root", str(root)], catch_exceptions=False).output
    assert "official counts (HMDB51 split 1 (testTrainMulti_7030_splits)): train 3570, test 1530, classes 51 - " \
           "the lists match" in text


def _result(directory: Path, label: str, value: float, complete: bool | None) -> Path:
    data = {
        "schema": "severe-bench/result/v1",
        "task": {"id": "hmdb51", "name": "HMDB51 (split 1)", "factor": "domain", "dataset": "hmdb51"},
        "protocol": {"name": "finetune", "hash": protocol_hash_of({"profile": "full"}), "profile": "full",
                     "comparable": True, "values": {"profile": "full"}},  # the hash recomputes (validate_result)
        "metric": {"name": "top1", "value": value, "higher_is_better": True, "unit": "%"},
        "metrics": {"top1": value},
        "model": {"label": label, "architecture": "r2plus1d_18",
                  "checkpoint": {"name": label.lower(), "sha256": f"sha-{label}", "layout": "torchvision"}},
        "seed": 0, "code_version": "0.1.0", "device": {"type": "cpu"}, "wall_time_s": 1.0,
        "data": {"root": "/data", "num_train": 3570, "num_test": 1530, "train_subset_hash": None,
                 "unreadable_videos": {"count": 0, "paths": []}},
        "created_at": "2026-12-01T00:00:00Z",
    }
    if complete is not None:
        data["data"].update({"complete": complete, "incomplete_reasons": [] if complete else ["test: 3 missing"]})
    path = directory / f"{label}.json"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_tables_mark_rows_computed_on_an_incomplete_dataset(tmp_path):
    _result(tmp_path, "Full", 60.0, True)
    _result(tmp_path, "Partial", 55.0, False)
    _result(tmp_path, "Older", 50.0, None)  # results written before the field existed are not flagged
    table = build_table(load_results([tmp_path]))
    assert table.incomplete == {("Partial", "hmdb51")}
    md = render(table, "md")
    assert "_55.0_†" in md and "**60.0**" in md and "**60.0**†" not in md and "50.0†" not in md
    assert "† computed on an incomplete dataset" in md and "Partial on HMDB51" in md
    assert r"55.0}$^\dagger$" in render(table, "latex")
    assert "55.0</u>†" in render(table, "html")
    csv_rows = render(table, "csv").splitlines()
    assert csv_rows[0].split(",").count("incomplete_data") == 1
    assert any(r.startswith("Partial,") and ",hmdb51," in r for r in csv_rows)


def test_synthetic_tasks_do_not_inherit_real_official_counts():
    for task_id in registry.list_task_ids():
        task = registry.get_task(task_id)
        if task.dataset.get("builtin") == "synth":
            assert task.dataset.get("official") is None, task_id


def test_eval_records_counts_and_flags_missing_videos(tmp_path, monkeypatch, one_thread):
    """A real (tiny) evaluation on the generated suite with one test video deleted: the result records the
    counts and says the dataset was incomplete; the table marks the cell."""
    import shutil

    from severe_bench.synth import generate_suite

    suite = tmp_path / "synth"
    generate_suite(suite, seed=0, scale="tiny")
    tasks = tmp_path / "tasks"
    shutil.copytree(registry.tasks_dir(), tasks)
    (tasks / "synth_tiny.yaml").write_text(
        "id: synth_tiny\nname: tiny\ninclude: synth_motion.yaml\n"
        "protocol:\n  input: {frames: 2, fps: 8, crop: 16}\n  batch_size: 4\n"
        "  schedule: {passes: 1, clips_per_video: 1, milestones: [1], gamma: 0.3}\n"
        "  test: {clips: 1, frames: 2, fps: 8, resize: 18, crop: 16}\n"
        "max_videos: {train: 4, test: 3}\n")
    monkeypatch.setenv("SEVERE_TASKS_DIR", str(tasks))
    task = registry.get_task("synth_tiny")
    test = registry.read_split(task, suite / "synth_motion", "test")
    (suite / "synth_motion" / test[0].video).unlink()  # evenly_spaced keeps the first video: it is scored
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["eval", "-c", "scratch", "-t", "synth_tiny", "--workers", "0",
                                   "--data-root", str(suite), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "computed on an INCOMPLETE dataset: test: 1 of" in res.output
    data = json.loads((out / "synth_tiny" / "seed0" / "result.json").read_text())["data"]
    assert data["official_counts"] is None
    assert data["found_counts"] == {"train": len(registry.read_split(task, suite / "synth_motion", "train")),
                                    "test": len(test), "classes": 6}
    assert data["missing_videos"] == {"train": 0, "test": 1}
    assert data["complete"] is False
    assert data["incomplete_reasons"] == [f"test: 1 of {len(test)} listed videos missing on disk"]
    assert data["unreadable_videos"]["count"] == 1  # the missing one, counted once in the reasons
    table = build_table(load_results([out]))
    assert {task for _, task in table.incomplete} == {"synth_tiny"}
    assert "†" in render(table, "md")
