"""CKA: identities and invariances, the unbiased estimator, minibatch vs full batch, ``severe cka --features``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from severe_bench.cli import main
from severe_bench.errors import SevereError
from severe_bench.similarity import (MinibatchCKA, cka, hsic_biased, hsic_unbiased, linear_cka_feature_space,
                                     minibatch_cka, minibatch_cka_matrix)
from severe_bench.similarity.streaming import batch_bounds, cka_of_arrays


@pytest.fixture(scope="module")
def reps():
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=(n, 40))
    y = np.tanh(x @ rng.normal(size=(40, 24))) + 0.5 * rng.normal(size=(n, 24))
    z = rng.normal(size=(n, 30))
    return x, y, z


def _orthogonal(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_self_similarity_is_one(reps):
    x, y, _ = reps
    for kernel in ("linear", "rbf"):
        for unbiased in (True, False):
            assert cka(x, x, kernel=kernel, unbiased=unbiased) == pytest.approx(1.0, abs=1e-10)
    assert minibatch_cka(y, y, batch_size=128) == pytest.approx(1.0, abs=1e-10)


def test_invariant_to_orthogonal_transforms_and_isotropic_scaling(reps):
    x, y, _ = reps
    q = _orthogonal(x.shape[1], 1)
    base = cka(x, y)
    assert cka(x @ q, y) == pytest.approx(base, abs=1e-10)
    assert cka(3.7 * x, 0.01 * y) == pytest.approx(base, abs=1e-10)
    assert cka(x, x @ q * 5.0) == pytest.approx(1.0, abs=1e-10)
    assert minibatch_cka(x @ q * 2.0, y, batch_size=100) == pytest.approx(minibatch_cka(x, y, batch_size=100), abs=1e-10)
    # RBF with the median-distance bandwidth is invariant too (distances scale with the bandwidth)
    assert cka(x @ q * 4.0, y, kernel="rbf") == pytest.approx(cka(x, y, kernel="rbf"), abs=1e-8)
    # ...but CKA is not invariant to an arbitrary invertible linear map (the point of CKA vs. CCA)
    a = np.random.default_rng(2).normal(size=(x.shape[1], x.shape[1]))
    assert abs(cka(x @ a, y) - base) > 1e-3


def test_related_beats_unrelated(reps):
    x, y, z = reps
    assert cka(x, y) > 0.2
    assert abs(cka(x, z)) < 0.02  # independent: the unbiased estimate is near 0
    assert cka(x, z, unbiased=False) > abs(cka(x, z))  # the biased one is pulled up (d/n ≈ 0.05)


def test_unbiased_hsic_matches_the_formula_by_loops():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 2))
    k, l = x @ x.T, y @ y.T
    n = 7
    kt, lt = k.copy(), l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    expected = (np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ kt @ lt @ one) / (n * (n - 3))
    got = float(hsic_unbiased(torch.from_numpy(k), torch.from_numpy(l)))
    assert got == pytest.approx(expected, rel=1e-12)
    h = np.eye(n) - 1.0 / n
    assert float(hsic_biased(torch.from_numpy(k), torch.from_numpy(l))) == pytest.approx(
        np.trace(k @ h @ l @ h) / (n - 1) ** 2, rel=1e-12)


def test_biased_kernel_form_equals_feature_space_form(reps):
    x, y, _ = reps
    assert cka(x, y, unbiased=False) == pytest.approx(linear_cka_feature_space(x, y), abs=1e-10)


def test_minibatch_estimate_is_close_to_full_batch(reps):
    x, y, z = reps
    full = cka(x, y)
    for bs in (100, 150, 300):
        assert minibatch_cka(x, y, batch_size=bs) == pytest.approx(full, abs=0.02)
    assert minibatch_cka(x, y, batch_size=10_000) == pytest.approx(full, abs=1e-10)  # one batch = full batch
    assert abs(minibatch_cka(x, z, batch_size=100)) < 0.03
    assert minibatch_cka(x, y, batch_size=150, kernel="rbf") == pytest.approx(cka(x, y, kernel="rbf"), abs=0.03)


def test_accumulator_matrix_matches_pairwise_and_has_bounded_state(reps):
    x, y, z = reps
    m = minibatch_cka_matrix([x, y], [y, z, x], batch_size=128, shuffle_seed=None)
    for i, a in enumerate([x, y]):
        for j, b in enumerate([y, z, x]):
            assert m[i, j] == pytest.approx(minibatch_cka(a, b, batch_size=128, shuffle_seed=None), abs=1e-12)
    acc = MinibatchCKA(2, 3)
    sizes = {t.numel() for t in (acc.xy, acc.xx, acc.yy)}
    for start, stop in batch_bounds(len(x), 64):
        acc.update([x[start:stop], y[start:stop]], [y[start:stop], z[start:stop], x[start:stop]])
    assert {t.numel() for t in (acc.xy, acc.xx, acc.yy)} == sizes  # state does not grow with examples
    assert acc.examples == len(x)


def test_batch_bounds_merge_a_short_tail():
    assert batch_bounds(10, 4) == [(0, 4), (4, 10)]
    assert batch_bounds(12, 4) == [(0, 4), (4, 8), (8, 12)]
    with pytest.raises(ValueError):
        batch_bounds(3, 4)


def test_nan_rows_are_dropped_and_mismatches_refused(reps):
    x, y, _ = reps
    xn = x.copy()
    xn[[5, 17]] = np.nan
    m, n = cka_of_arrays([xn], [y], batch_size=10_000)
    keep = np.setdiff1d(np.arange(len(x)), [5, 17])
    assert n == len(x) - 2
    assert m[0, 0] == pytest.approx(cka(x[keep], y[keep]), abs=1e-10)
    with pytest.raises(SevereError, match="different numbers of rows"):
        cka_of_arrays([x], [y[:-1]])
    with pytest.raises(SevereError, match="constant"):
        cka_of_arrays([np.ones((20, 3))], [y[:20]])


def test_cli_features(tmp_path, reps, capsys):
    x, y, _ = reps
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(a, x.astype(np.float32))
    np.save(b, y.astype(np.float32))
    main(["cka", "--features", str(a), str(b), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"cka"}
    assert out["cka"] == pytest.approx(cka(x.astype(np.float32), y.astype(np.float32)), abs=1e-6)
    main(["cka", "--features", str(a), str(a)])
    assert float(capsys.readouterr().out.strip()) == pytest.approx(1.0, abs=1e-6)
    np.save(tmp_path / "short.npy", y[:10])
    with pytest.raises(SystemExit) as info:
        main(["cka", "--features", str(a), str(tmp_path / "short.npy")])
    assert info.value.code != 0
    assert "different numbers of rows" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["cka", "--features", str(a), str(tmp_path / "missing.npy")])
    assert "does not exist" in capsys.readouterr().err


# --- end to end on the synthetic suite ----------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    from severe_bench.synth.suite import ensure_suite

    return ensure_suite(tmp_path_factory.mktemp("synth"), scale="tiny")


@pytest.mark.slow
def test_cka_over_a_task_with_scratch_checkpoints(tiny_suite, tmp_path, capsys):
    out = tmp_path / "cka"
    args = ["cka", "--task", "synth_motion", "--checkpoint", "scratch", "--checkpoint", "scratch",
            "--data-root", str(tiny_suite), "--frames", "4", "--crop", "32", "--extract-batch-size", "16",
            "--device", "cpu", "--out", str(out)]
    main(args)
    cap = capsys.readouterr()
    stems = ["cka_layers_scratch_vs_scratch-2", "cka_checkpoints_layer4"]
    for stem in stems:
        for ext in ("csv", "json", "png", "pdf"):
            assert (out / f"{stem}.{ext}").stat().st_size > 0
            assert str(out / f"{stem}.{ext}") in cap.out
    layers = json.loads((out / f"{stems[0]}.json").read_text())
    assert layers["rows"] == layers["columns"] == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert layers["num_examples"] == 6 and layers["task"] == "synth_motion" and layers["failed_videos"] == []
    ckpts = json.loads((out / f"{stems[1]}.json").read_text())
    m = np.array(ckpts["cka"])
    assert m.shape == (2, 2) and np.allclose(np.diag(m), 1.0) and m[0, 1] == pytest.approx(m[1, 0])
    assert m[0, 1] < 0.999  # two different random networks
    assert np.array(layers["cka"])[4, 4] == pytest.approx(m[0, 1])

    # the numbers are CKA of the cached features (one batch here: the full-batch unbiased estimate)
    by_label = {json.loads((d / "meta.json").read_text())["label"]: d for d in (out / "features").iterdir()}
    assert sorted(by_label) == ["scratch", "scratch#2"]
    dirs = [by_label["scratch"], by_label["scratch#2"]]
    feats = [np.load(d / "layer2.npy") for d in dirs], [np.load(d / "layer4.npy") for d in dirs]
    assert feats[0][0].shape == (6, 128) and feats[1][0].shape == (6, 512)
    assert np.array(layers["cka"])[2, 4] == pytest.approx(cka(feats[0][0], feats[1][1]), abs=1e-6)
    np.save(tmp_path / "a.npy", feats[1][0])
    np.save(tmp_path / "b.npy", feats[1][1])
    main(["cka", "--features", str(tmp_path / "a.npy"), str(tmp_path / "b.npy"), "--json"])
    assert json.loads(capsys.readouterr().out)["cka"] == pytest.approx(m[0, 1], abs=1e-6)

    # a second run reuses the cached features (same scratch weights from the same seed)
    main(args)
    assert capsys.readouterr().err.count("features: reusing") == 2
    again = json.loads((out / f"{stems[1]}.json").read_text())
    assert np.allclose(again["cka"], ckpts["cka"])


def test_cka_task_mode_refusals(capsys):
    with pytest.raises(SystemExit):
        main(["cka", "--task", "synth_motion", "--checkpoint", "scratch"])
    assert "at least two --checkpoint" in capsys.readouterr().err


def test_cka_task_mode_checks_out_before_any_work(capsys, blocked_out):
    missing = str(blocked_out.missing)
    with pytest.raises(SystemExit) as exc:
        main(["cka", "--task", "synth_motion", "--checkpoint", missing, "--checkpoint", missing,
              "--out", str(blocked_out.out)])
    assert exc.value.code != 0
    blocked_out.refused(capsys.readouterr().err)
