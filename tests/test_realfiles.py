"""Every reader on the real official annotation files (../shared/realfiles, read in place; skipped when absent):
the lists parse and their counts are the official ones the task files declare (PROTOCOL.md §2.2)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from severe_bench import registry
from severe_bench.data.annotations import read_annotations
from severe_bench.data.completeness import compare_counts

REALFILES = Path(__file__).resolve().parents[2] / "shared" / "realfiles"

# task -> (realfiles folder, splits present there)
LAYOUTS = {
    "ucf101": ("ucf101", ("train", "test")), "ucf101_1k": ("ucf101", ("train", "test")),
    "hmdb51": ("hmdb51", ("train", "test")), "gym99": ("finegym", ("train", "test")),
    "gym288": ("finegym", ("train", "test")), "fx_s1": ("finegym", ("train", "test")),
    "ub_s1": ("finegym", ("train", "test")), "gym_vault": ("finegym", ("train", "test")),
    "gym_floor": ("finegym", ("train", "test")), "charades": ("charades", ("train", "test")),
    "diving48": ("diving48", ("train", "test")), "ssv2": ("ssv2", ("test",)),
    "ek100_verb": ("ek100", ("test",)), "mini_ssv2": ("mini_ssv2", ("test",)),
    "ikeafa": ("ikeafa", ("train", "test")), "uav_human": ("uav_human", ("train", "test")),
}


def _folder(name: str) -> Path:
    path = REALFILES / name
    if not path.exists():
        pytest.skip(f"{path} not present (official files are not part of the project)")
    return path


def _check_counts(task, counts: dict) -> None:
    off = task.dataset.get("official")
    if off is None:
        return
    found = {sp: counts.get(sp, off[sp]) for sp in ("train", "test")}  # an absent split is not compared
    rep = compare_counts(task, {**found, "classes": None})
    assert rep["matches"], rep["differences"]


@pytest.mark.parametrize("task_id", sorted(LAYOUTS))
def test_reader_on_the_official_files(task_id):
    folder, splits = LAYOUTS[task_id]
    root = _folder(folder)
    task = registry.get_task(task_id)
    counts = {}
    for split in splits:
        samples = registry.read_split(task, root, split)
        assert samples, (task_id, split)
        n = task.num_classes
        assert all(0 <= i < n for s in samples for i in s.class_indices()), (task_id, split)
        counts[split] = len(samples)
    _check_counts(task, counts)


def test_ntu60_reads_the_cross_subject_lists():
    root = _folder("ntu60")
    task = registry.get_task("ntu60")
    lists = "ntu_60_cross_subject_TrainTestlist/"
    ds = {**task.dataset, "files": {"train": lists + "trainlist01.txt", "test": lists + "testlist01.txt"}}
    counts = {sp: len(read_annotations("ntu60", root, ds, sp).samples) for sp in ("train", "test")}
    _check_counts(task, counts)


def test_ucfrep_reads_the_official_annotation_zip(tmp_path):
    archive = _folder("ucfrep") / "ucf526_annotations.zip"
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path)  # into the test's temporary folder only
    task = registry.get_task("ucfrep")
    counts = {sp: len(registry.read_split(task, tmp_path, sp)) for sp in ("train", "test")}
    _check_counts(task, counts)
