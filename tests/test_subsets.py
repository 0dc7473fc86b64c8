"""Few-sample subsets are the SEVERE reference's exact draw (datasets/utils.py): checked against an
independent implementation of the rule, on hand-made lists and on the official UCF101 / FineGym lists when
../shared/realfiles is present."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from severe_bench import registry
from severe_bench.cli import cli
from severe_bench.data.sample import Sample
from severe_bench.data.subset import apply_train_subset, class_balanced_subset, sample_list_hash

REALFILES = Path(__file__).resolve().parents[2] / "shared" / "realfiles"


def independent_subset(names: list[str], labels: list[int], total: int, seed: int = 99999) -> set[str]:
    """The rule as the reference states it, written separately: k = ceil(total / C); classes ascending;
    one RandomState drawing min(k, n_c) positions without replacement within each class's list."""
    labels_arr = np.asarray(labels)
    classes = np.unique(labels_arr)  # ascending
    k = math.ceil(total / len(classes))
    state = np.random.RandomState(seed)
    picked = set()
    for c in classes:
        members = np.flatnonzero(labels_arr == c)  # annotation-file order
        draw = state.choice(members.shape[0], members.shape[0] if k > members.shape[0] else k, replace=False)
        picked.update(names[m] for m in members[draw])
    return picked


def make_samples(counts: list[int], seed: int = 3) -> list[Sample]:
    """Classes with the given sizes, interleaved in the file (as real lists are not class-sorted)."""
    order = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    return [Sample(video=f"v{i:04d}.avi", label=int(c)) for i, c in enumerate(order)]


@pytest.mark.parametrize("counts,total", [([30, 25, 40, 5, 31], 100), ([12] * 9, 50), ([3, 50, 2, 9], 20)])
def test_subset_matches_independent_rule(counts, total):
    samples = make_samples(counts)
    sub = class_balanced_subset(samples, total, 99999)
    want = independent_subset([s.video for s in samples], [s.label for s in samples], total)
    assert {s.video for s in sub} == want
    k = math.ceil(total / len(counts))
    assert len(sub) == sum(min(k, n) for n in counts)
    assert [samples.index(s) for s in sub] == sorted(samples.index(s) for s in sub)  # annotation order


def test_one_random_state_is_shared_across_classes():
    """Drawing each class with a fresh RandomState(99999) gives a different subset: the stream is shared."""
    samples = make_samples([20, 20, 20])
    sub = {s.video for s in class_balanced_subset(samples, 15, 99999)}
    fresh = set()
    for c in range(3):
        members = [s.video for s in samples if s.label == c]
        fresh.update(members[j] for j in np.random.RandomState(99999).choice(len(members), 5, replace=False))
    assert sub != fresh


def test_missing_videos_are_dropped_before_drawing(tmp_path):
    samples = make_samples([8, 8, 8])
    present = [s for i, s in enumerate(samples) if i % 3]
    for s in present:
        (tmp_path / s.video).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / s.video).write_bytes(b"")
    rule = {"rule": "class_balanced", "size": 12, "seed": 99999, "drop_missing_videos": True}
    sub = apply_train_subset(samples, rule, tmp_path)
    assert {s.video for s in sub} == independent_subset([s.video for s in present], [s.label for s in present], 12)
    # without the drop the draw runs over the full list and differs
    full = apply_train_subset(samples, {**rule, "drop_missing_videos": False})
    assert sample_list_hash(full) != sample_list_hash(sub)


def _real(*parts: str) -> Path:
    path = REALFILES.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (official files are not part of the project)")
    return path


def test_ucf101_1k_on_the_official_list():
    root = _real("ucf101")
    task = registry.get_task("ucf101_1k")
    full, subset = registry.train_lists(task, root)
    assert len(full) == 9537
    assert len(subset) == 1010  # ceil(1000 / 101) = 10 of each class
    lines = (root / "ucfTrainTestlist/trainlist01.txt").read_text().split()
    names = [t for t in lines if t.endswith(".avi")]
    classes = [c.split()[1] for c in (root / "ucfTrainTestlist/classInd.txt").read_text().splitlines() if c.strip()]
    labels = [classes.index(n.split("/")[0]) for n in names]
    assert {s.video for s in subset} == {f"UCF-101/{n}" for n in independent_subset(names, labels, 1000)}
    res = CliRunner().invoke(cli, ["data", "list", "ucf101_1k", "--root", str(root)], catch_exceptions=False)
    assert res.exit_code == 0
    rows = list(csv.reader(io.StringIO(res.stdout)))[1:]
    assert [r[0] for r in rows] == [s.video for s in subset]
    assert f"subset of 1010 of the full list's 9537 videos" in res.stderr
    assert sample_list_hash(subset)[:16] in res.stderr


def test_gym99_1k_on_the_official_list_with_clips_missing(tmp_path):
    ann = _real("finegym", "annotations")
    root = tmp_path / "finegym"
    root.mkdir()
    (root / "annotations").symlink_to(ann)  # read in place, never copied
    rows = [line.split() for line in (ann / "gym99_train.txt").read_text().splitlines() if line.strip()]
    assert len(rows) == 20484
    (root / "subactions").mkdir()
    present = [(n, int(lab)) for i, (n, lab) in enumerate(rows) if i % 4 == 1]  # three quarters of the clips absent
    for name, _ in present:
        (root / "subactions" / f"{name}.mp4").write_bytes(b"")
    task = registry.get_task("gym99_1k")
    full, subset = registry.train_lists(task, root)
    assert len(full) == 20484
    want = independent_subset([n for n, _ in present], [lab for _, lab in present], 1000)
    assert {s.id for s in subset} == want
    res = CliRunner().invoke(cli, ["data", "check", "gym99_1k", "--root", str(root), "--json"], catch_exceptions=False)
    import json

    rep = json.loads(res.stdout)
    assert rep["splits"]["train"]["samples"] == 20484
    assert rep["splits"]["train"]["train_subset"]["samples"] == len(subset)
    assert rep["splits"]["train"]["train_subset"]["sha256"] == sample_list_hash(subset)
