"""``severe plot``: every kind writes PNG and PDF; the scatter's correlations are right; clear refusals."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from severe_bench.report import build_table, load_reference, load_results
from severe_bench.report.plots import cka_heatmap, correlations_vs_ucf101

from test_table import SEVERE_EIGHT, run_cli, write_result


def _check_figure(path_png: Path):
    img = imread(path_png)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert img[..., :3].std() > 0.01  # not blank
    pdf = path_png.with_suffix(".pdf")
    assert pdf.read_bytes().startswith(b"%PDF")


def _user_results(d: Path):
    rng = np.random.default_rng(0)
    for label in ("MyNet", "Other Net"):
        for seed in range(2):
            for task in SEVERE_EIGHT + ["ucf101"]:
                v = 0.15 + 0.01 * rng.normal() if task == "ucfrep" else 60 + 2 * rng.normal()
                write_result(d, task, label, float(v), seed=seed)


def test_all_kinds_write_png_and_pdf(tmp_path, capsys):
    res, out = tmp_path / "res", tmp_path / "figs"
    _user_results(res)
    code, stdout, err = run_cli(["plot", str(res), "--with-reference", "--kind", "all", "--out", str(out)], capsys)
    assert code == 0, err
    assert "skipped sample-curve" in err  # no size sweep in these results
    for stem in ("factor_bars", "scatter_vs_ucf101", "summary_mynet", "summary_other-net"):
        _check_figure(out / f"{stem}.png")
        assert str(out / f"{stem}.png") in stdout
    assert not (out / "summary_none.png").exists()  # summaries are for evaluated checkpoints only


def _kendall_tau_b(x, y):
    conc = disc = tx = ty = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
        if dx == 0 and dy == 0:
            continue
        if dx == 0:
            tx += 1
        elif dy == 0:
            ty += 1
        elif dx == dy:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / np.sqrt((conc + disc + tx) * (conc + disc + ty))


def test_scatter_correlations_on_the_published_table(tmp_path, capsys):
    table = build_table(load_reference())
    corr = correlations_vs_ucf101(table).set_index("task")
    both = table.mean[["ucf101", "ssv2"]].dropna()
    assert corr.at["ssv2", "n"] == 11  # the Table 4.4 rows (later methods have no UCF101)
    assert corr.at["ssv2", "pearson_r"] == pytest.approx(np.corrcoef(both["ucf101"], both["ssv2"])[0, 1])
    for task in ("ssv2", "ucfrep", "gym99_1k"):
        b = table.mean[["ucf101", task]].dropna().to_numpy()
        assert corr.at[task, "kendall_tau"] == pytest.approx(_kendall_tau_b(b[:, 0], b[:, 1]))
    assert corr.at["ucfrep", "pearson_r"] < 0  # lower error with higher UCF101 accuracy
    code, _, err = run_cli(["plot", "--with-reference", "--kind", "scatter", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    _check_figure(tmp_path / "scatter_vs_ucf101.png")
    rows = {r["task"]: r for r in csv.DictReader(open(tmp_path / "scatter_vs_ucf101.csv"))}
    assert float(rows["ssv2"]["pearson_r"]) == pytest.approx(corr.at["ssv2", "pearson_r"], rel=1e-5)


def test_sample_curve(tmp_path, capsys):
    res = tmp_path / "sweep"
    for label in ("A", "B"):
        for seed in range(2):
            for task, n in (("ucf101_1k", 1000), ("ucf101_2k", 2000), ("ucf101", 9537)):
                write_result(res, task, label, 40 + n / 300 + seed, seed=seed, num_train=n, dataset="ucf101")
    code, _, err = run_cli(["plot", str(res), "--kind", "sample-curve", "--out", str(tmp_path / "f")], capsys)
    assert code == 0, err
    _check_figure(tmp_path / "f" / "sample_curves.png")
    single = tmp_path / "single"
    write_result(single, "ucf101_1k", "A", 50.0, num_train=1000, dataset="ucf101")
    code, _, err = run_cli(["plot", str(single), "--kind", "sample-curve", "--out", str(tmp_path / "g")], capsys)
    assert code != 0 and "two or more training-set sizes" in err


def test_refusals(tmp_path, capsys):
    code, _, err = run_cli(["plot", "--with-reference", "--kind", "summary", "--out", str(tmp_path)], capsys)
    assert code != 0 and "summary needs result JSONs" in err
    res = tmp_path / "res"
    write_result(res, "ssv2", "A", 50.0)
    code, _, err = run_cli(["plot", str(res), "--kind", "scatter", "--out", str(tmp_path)], capsys)
    assert code != 0 and "UCF101" in err
    code, _, err = run_cli(["plot", str(res), "--kind", "factor-bars", "--out", str(tmp_path / "ok")], capsys)
    assert code == 0, err
    _check_figure(tmp_path / "ok" / "factor_bars.png")


def test_smoke_summary_says_so(tmp_path):
    res = tmp_path / "res"
    for task in SEVERE_EIGHT:
        write_result(res, task, "Quick", 0.2 if task == "ucfrep" else 30.0, comparable=False,
                     protocol_hash="5m0ke5m0ke5m0ke0")
    obs = load_results([res])
    table = build_table(obs)
    from severe_bench.report.plots import summaries

    paths = summaries(table, obs, tmp_path / "s")
    _check_figure(paths[0])


def test_cka_heatmap(tmp_path):
    m = np.array([[1.0, 0.4], [0.4, 1.0]])
    paths = cka_heatmap(m, ["a", "b"], ["a", "b"], "test", tmp_path, "heat")
    _check_figure(paths[0])
