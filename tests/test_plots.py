"""``severe plot``: every kind writes PNG and PDF; the scatter's correlations are right; clear refusals."""

from __future__ import annotations

import csv
import itertools
import re
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
                     protocol="smoke")
    obs = load_results([res])
    table = build_table(obs)
    from severe_bench.report.plots import summaries

    paths = summaries(table, obs, tmp_path / "s")
    _check_figure(paths[0])


def test_cka_heatmap(tmp_path):
    m = np.array([[1.0, 0.4], [0.4, 1.0]])
    paths = cka_heatmap(m, ["a", "b"], ["a", "b"], "test", tmp_path, "heat")
    _check_figure(paths[0])


# --- fit for a paper: plain axes, sized canvas, labels, style ------------------------------------------

def _paper_inputs(tmp_path):
    """Published rows plus two user checkpoints, one with identical values on every seed (single-value panels)."""
    res = tmp_path / "res"
    for seed in range(2):
        for task in ("ucf101", "ssv2", "ucfrep", "synth_motion"):
            write_result(res, task, "Flat", 0.1875 if task == "ucfrep" else 18.75, seed=seed,
                         sha="ab" * 32)
            write_result(res, task, "Mine", 0.2 if task == "ucfrep" else 60.0 + seed, seed=seed)
    obs = load_results([res])
    import pandas as pd

    obs = pd.concat([load_reference(), obs], ignore_index=True)
    return build_table(obs), obs


def _blank_cells(png: Path, grid: int = 6) -> float:
    img = imread(png)[..., :3]
    h, w = img.shape[:2]
    blank = 0
    for i in range(grid):
        for j in range(grid):
            cell = img[i * h // grid:(i + 1) * h // grid, j * w // grid:(j + 1) * w // grid]
            blank += bool((cell > 0.97).all())
    return blank / grid ** 2


def _tick_texts(ax):
    return [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]


def test_factor_bars_have_plain_axes_and_a_tight_canvas(tmp_path):
    from severe_bench.report.plots import factor_bars, factor_bars_figure

    table, _ = _paper_inputs(tmp_path)
    fig = factor_bars_figure(table)
    fig.draw_without_rendering()
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == len(table.columns)
    for ax in panels:
        assert ax.xaxis.get_offset_text().get_text() == "" and ax.yaxis.get_offset_text().get_text() == ""
        numbers = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert numbers and all(re.fullmatch(r"[0-9.]+", t.replace("\u2212", "-").lstrip("-")) for t in numbers), numbers
        assert not any("n/a" in t for t in _tick_texts(ax))
        lo, hi = ax.get_xlim()
        assert lo == 0 and hi > 0  # bars start at zero
    own = next(ax for ax in panels if ax.get_title() == "synth_motion")  # a task only the user's rows have
    assert own.get_ylim() == (1.5, -0.5)  # its section shows those two rows, not fifteen empty ones
    (png, pdf) = factor_bars(table, tmp_path / "f")
    w, h = imread(png).shape[1], imread(png).shape[0]
    assert 800 <= w <= 1700 and 500 <= h <= 2200, (w, h)  # about a page wide, never 4949 x 2267
    assert _blank_cells(png) <= 0.25


def test_published_rows_drawn_distinctly_in_the_factor_colour(tmp_path):
    from matplotlib.colors import to_rgba

    from severe_bench.report.plots import factor_bars_figure, scatter_figure, correlations_vs_ucf101
    from severe_bench.report.style import USER_EDGE, factor_color, light

    table, _ = _paper_inputs(tmp_path)
    fig = factor_bars_figure(table)
    ssv2 = next(ax for ax in fig.axes if ax.get_title() == "SSv2")
    user = set(table.rows.index[table.rows["provenance"] == "user"])
    faces = {}
    for bar in ssv2.patches:
        label = table.labels[round(bar.get_y() + bar.get_height() / 2)]
        faces[label] = (bar.get_facecolor(), bar.get_edgecolor())
    assert faces["Mine"] == (to_rgba(factor_color("Domains")), to_rgba(USER_EDGE))
    assert faces["GDT"][0] == to_rgba(light(factor_color("Domains")))
    assert set(faces) == set(table.mean["ssv2"].dropna().index)  # one bar per row with a value, no n/a bars
    # a task outside the SEVERE columns takes the colour of the factor its task file names (synth_motion: domain)
    synth = next(ax for ax in fig.axes if ax.get_title() == "synth_motion")
    assert {bar.get_facecolor() for bar in synth.patches} == {to_rgba(factor_color("Domains"))}
    # the scatter uses the same factor colour for the SSv2 panel, filled for the user's rows
    sc = scatter_figure(table, correlations_vs_ucf101(table))
    ax = next(a for a in sc.axes if a.get_title().startswith("SSv2"))
    published, mine = ax.collections[:2]
    assert tuple(published.get_edgecolor()[0]) == to_rgba(factor_color("Domains"))
    assert tuple(mine.get_facecolor()[0]) == to_rgba(factor_color("Domains")) and len(mine.get_offsets()) == len(user)


def test_scatter_labels_every_method_once_and_none_collide(tmp_path):
    from severe_bench.report.plots import correlations_vs_ucf101, scatter_figure

    table, _ = _paper_inputs(tmp_path)
    corr = correlations_vs_ucf101(table)
    fig = scatter_figure(table, corr)
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    for ax, rec in zip(fig.axes, corr.itertuples()):
        both = table.mean[["ucf101", rec.task]].dropna()
        texts = [t for t in ax.texts if t.get_text()]
        assert sorted(t.get_text() for t in texts) == sorted(both.index)  # each method once
        boxes = {t.get_text(): t.get_window_extent(renderer) for t in texts}
        frame = ax.get_window_extent(renderer)
        points = {lab: ax.transData.transform((x, y)) for lab, (x, y) in both.iterrows()}
        names = list(boxes)
        for i, a in enumerate(names):
            assert frame.x0 <= boxes[a].x0 and boxes[a].x1 <= frame.x1 and frame.y0 <= boxes[a].y0 <= frame.y1
            for b in names[i + 1:]:
                assert not boxes[a].overlaps(boxes[b]), (rec.task, a, b)
            for other, (x, y) in points.items():
                if other != a:
                    assert not boxes[a].contains(x, y), (rec.task, a, "covers the point of", other)
        assert ax.xaxis.get_offset_text().get_text() == "" and ax.yaxis.get_offset_text().get_text() == ""


def test_summary_is_compact_and_names_the_real_sha256(tmp_path):
    from severe_bench.report.plots import summaries

    table, obs = _paper_inputs(tmp_path)
    paths = summaries(table, obs, tmp_path / "s")
    png = tmp_path / "s" / "summary_flat.png"
    assert png in paths
    fig_text = (tmp_path / "s" / "summary_flat.pdf").read_bytes()
    assert fig_text.startswith(b"%PDF")
    from severe_bench.report.plots import summary_figure

    fig = summary_figure(table, obs, "Flat")
    texts = " ".join(t.get_text() for sub in [fig, *fig.subfigs] for t in sub.texts)
    assert "ab" * 32 in texts and "?" not in texts
    img = imread(png)
    assert img.shape[1] <= 1500 and img.shape[0] <= 1500  # page wide, as tall as its content (was A4)
    assert _blank_cells(png) <= 0.25


def test_pdf_is_vector_with_embedded_truetype(tmp_path):
    from severe_bench.report.plots import factor_bars

    table, _ = _paper_inputs(tmp_path)
    _, pdf = factor_bars(table, tmp_path / "f")
    data = pdf.read_bytes()
    assert b"/Subtype /Image" not in data  # no raster inside
    assert b"/FontFile2" in data  # TrueType fonts embedded (text stays text)
