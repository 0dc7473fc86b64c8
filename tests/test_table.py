"""``severe table``: SEVERE mean and rank on the published numbers, std formatting, protocol-hash refusal,
well-formed LaTeX, and result JSONs exactly as ``severe eval`` writes them (docs/CONVENTIONS.md)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from severe_bench.cli import main
from severe_bench.errors import SevereError
from severe_bench.registry import protocol_hash_of
from severe_bench.report import build_table, load_reference, load_results
from severe_bench.report.render import render

SEVERE_EIGHT = ["ssv2", "gym99", "ucf101_1k", "gym99_1k", "fx_s1", "ub_s1", "ucfrep", "charades"]
METRICS = {"fx_s1": ("mean_class_accuracy", True, "%"), "ub_s1": ("mean_class_accuracy", True, "%"),
           "ucfrep": ("counting_error", False, "fraction"), "charades": ("map", True, "%")}
FACTORS = {"ssv2": "domain", "gym99": "domain", "ucf101_1k": "samples", "gym99_1k": "samples",
           "fx_s1": "actions", "ub_s1": "actions", "ucfrep": "task", "charades": "task"}


def protocol_of(variant: str = "default", comparable: bool = True) -> tuple[dict, str]:
    """Recorded protocol values of a test protocol ``variant`` and their hash (as the registry computes it)."""
    values = {"variant": variant, "profile": "full" if comparable else "smoke"}
    return values, protocol_hash_of(values)


DEFAULT_HASH = protocol_of()[1]


def write_result(directory: Path, task: str, label: str, value: float, seed: int = 0,
                 protocol: str = "default", comparable: bool = True, num_train: int = 100,
                 dataset: str | None = None, sha: str | None = None) -> Path:
    """A result JSON with every field of the ``severe-bench/result/v1`` schema."""
    metric, higher, unit = METRICS.get(task, ("top1", True, "%"))
    values, protocol_hash = protocol_of(protocol, comparable)
    data = {
        "schema": "severe-bench/result/v1",
        "task": {"id": task, "name": task.upper(), "factor": FACTORS.get(task, "extra"),
                 "dataset": dataset or task.split("_")[0]},
        "protocol": {"name": "finetune", "hash": protocol_hash, "profile": "full" if comparable else "smoke",
                     "comparable": comparable, "values": values},
        "metric": {"name": metric, "value": value, "higher_is_better": higher, "unit": unit},
        "metrics": {metric: value},
        "model": {"label": label, "architecture": "r2plus1d_18",
                  "checkpoint": {"name": label.lower(), "path": f"/ckpt/{label}.pth",
                                 "sha256": sha or f"sha-{label}", "layout": "torchvision"},
                  "params": 31300000, "gflops": 81.3},
        "seed": seed, "code_version": "0.1.0+gtest", "device": {"type": "cpu", "name": "test"}, "wall_time_s": 1.0,
        "data": {"root": "/data", "num_train": num_train, "num_test": 40, "train_subset_hash": None,
                 "unreadable_videos": {"count": 0, "paths": []}},
        "created_at": "2026-11-23T08:00:00Z",
    }
    directory.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9]+", "-", label)
    path = directory / f"{safe}_{task}_{protocol_hash[:6]}_seed{seed}.json"
    path.write_text(json.dumps(data, indent=2))
    return path


def run_cli(args, capsys):
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- published numbers ---------------------------------------------------------------------------------

def reference_table(**kw):
    return build_table(load_reference(), **kw)


def test_reference_rows_are_the_published_tables():
    ref = load_reference()
    methods = list(dict.fromkeys(ref["method"]))
    assert methods[0] == "None"  # not turned into a missing value
    assert len(methods) == 15  # Table 4.4 (11) + Table 5.8's later methods (4)
    assert set(ref["protocol_hash"]) == {"published"}
    gdt = ref[(ref["method"] == "GDT") & (ref["task"] == "ucfrep")].iloc[0]
    assert gdt["value"] == pytest.approx(0.123) and gdt["std"] == pytest.approx(0.01)
    assert "severe_benchmark.csv" in gdt["source"] and "Table 4.4" in gdt["source"]


def test_severe_mean_enters_ucf_rc_as_one_minus_error():
    t = reference_table()
    # Supervised, by hand: (60.8 + 92.1 + 86.6 + 51.3 + 79.0 + 87.1 + (1 - 0.132) * 100 + 23.5) / 8
    assert t.severe_mean["Supervised"] == pytest.approx(567.2 / 8)
    # Tubelet-Contrast: (60.2 + 92.8 + 65.7 + 47.0 + 80.1 + 91.0 + 85.0 + 10.3) / 8
    assert t.severe_mean["Tubelet-Contrast"] == pytest.approx(532.1 / 8)
    # the thesis: "Our method has the best mean performance and achieves the best average rank" (among the
    # self-supervised rows of Table 5.8; the supervised row is above it)
    ssl = t.severe_mean.drop("Supervised")
    assert ssl.idxmax() == "Tubelet-Contrast"
    assert t.avg_rank.drop("Supervised").idxmin() == "Tubelet-Contrast"


def test_average_rank_by_hand_and_tie_rules():
    t = reference_table()
    # Supervised among the 15 rows of Table 5.8: SSv2 2, Gym99 3, UCF1k 1, Gym1k 1, FX 3, UB 5, UCF-RC 2, Charades 2
    assert t.avg_rank["Supervised"] == pytest.approx(19 / 8)
    # only Table 4.4's 11 rows: 1, 1, 1, 1, 2, 3, 2 (GDT's 0.123 beats 0.132), 1
    t44 = build_table(load_reference(files=("severe_benchmark.csv",)))
    assert t44.avg_rank["Supervised"] == pytest.approx(12 / 8)
    # SSv2 ties: 59.0 (VideoMoCo, RSPNet) and 57.1 (None, MoCo)
    r = t44.task_ranks["ssv2"]
    assert (r["Supervised"], r["TCLR"], r["CtP"]) == (1, 2, 3)
    assert r["VideoMoCo"] == r["RSPNet"] == 4 and r["GDT"] == 6
    assert r["None"] == r["MoCo"] == 7 and r["Pretext-Contrast"] == 9
    avg = build_table(load_reference(files=("severe_benchmark.csv",)), tie_rule="average").task_ranks["ssv2"]
    assert avg["VideoMoCo"] == avg["RSPNet"] == 4.5 and avg["None"] == avg["MoCo"] == 7.5
    # lower error ranks first on UCF-RC
    assert t44.task_ranks["ucfrep"]["GDT"] == 1 and t44.task_ranks["ucfrep"]["None"] == 11
    # captions state the rule
    assert "ties share the best (minimum) rank" in render(t44, "md")
    assert "average of the ranks" in render(build_table(load_reference(), tie_rule="average"), "md")


def test_std_formatting_follows_the_thesis(capsys):
    code, out, _ = run_cli(["table", "--with-reference", "--format", "md"], capsys)
    assert code == 0
    none_row = next(line for line in out.splitlines() if line.startswith("| None "))
    cells = [c.strip() for c in none_row.strip("|").split("|")]
    assert cells[1:10] == ["77.3 ± 0.9", "57.1 ± 1.3", "89.8 ± 0.1", "38.3 ± 1.4", "22.7 ± 3.5", "46.6 ± 1.8",
                           "82.3 ± 2.1", "0.217 ± 0.01", "7.9 ± 0.1"]
    assert cells[10:] == ["52.9", "13.12"]
    assert "0.185 ± 0.00" in out and "91.1 ± 0.0" in out
    sup = next(line for line in out.splitlines() if line.startswith("| Supervised "))
    assert "**86.6** ± 0.6" in sup and "**70.9**" in sup  # best in bold
    assert "_0.132_ ± 0.01" in sup  # second-best error, lower is better
    assert "UCF-RC ↓" in out and "(1 − error) × 100" in out


def test_csv_has_method_and_mean_columns(capsys, tmp_path):
    out_file = tmp_path / "t.csv"
    code, _, _ = run_cli(["table", "--with-reference", "--format", "csv", "--out", str(out_file)], capsys)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    by = {r["method"]: r for r in rows}
    assert float(by["Supervised"]["mean"]) == pytest.approx(70.9)
    assert float(by["Supervised"]["rank"]) == pytest.approx(2.375)
    assert by["SVT"]["ucf101"] == "" and float(by["SVT"]["ucfrep"]) == pytest.approx(0.421)
    assert by["None"]["provenance"] == "published"


# --- LaTeX ---------------------------------------------------------------------------------------------

def _check_latex(text: str) -> None:
    depth = 0
    for ch in re.sub(r"\\[{}]", "", text):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, "closing brace without an opening one"
    assert depth == 0, "unbalanced braces"
    envs = re.findall(r"\\(begin|end)\{(\w+)\}", text)
    stack = []
    for kind, env in envs:
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack.pop() == env, f"\\end{{{env}}} does not close the open environment"
    assert not stack
    assert text.count("$") % 2 == 0 or text.count(r"\$") % 2 == 1
    spec = re.search(r"\\begin\{tabular\}\{([lcr]+)\}", text).group(1)
    body = text.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
    head = text.split(r"\toprule", 1)[1].split(r"\midrule")[0]
    for line in (head + body).splitlines():
        line = line.strip()
        if not line.endswith(r"\\"):
            continue
        width = 0
        for cell in re.split(r"(?<!\\)&", line[:-2]):
            m = re.search(r"\\multicolumn\{(\d+)\}", cell)
            width += int(m.group(1)) if m else 1
        assert width == len(spec), f"row has {width} cells, tabular has {len(spec)}: {line}"
    for i in ("toprule", "midrule", "bottomrule"):
        assert f"\\{i}" in text


def test_latex_is_well_formed_with_escaped_names(tmp_path, capsys):
    d = tmp_path / "res"
    for seed, bump in enumerate([0.0, 1.0, 2.0]):
        for task in SEVERE_EIGHT:
            value = 0.15 + bump / 100 if task == "ucfrep" else 60.0 + bump
            write_result(d, task, "A&B_net 100%#1", value, seed=seed)
    for rank_colors in (False, True):
        args = ["table", str(d), "--with-reference", "--format", "latex", "--standalone"]
        code, out, err = run_cli(args + (["--rank-colors"] if rank_colors else []), capsys)
        assert code == 0, err
        _check_latex(out)
        assert r"A\&B\_net 100\%\#1" in out
        assert r"\textbf{" in out and r"\underline{" in out
        assert ("\\cellcolor[RGB]" in out) == rank_colors
        assert r"\usepackage{booktabs}" in out
    assert r"\scriptsize$\pm$1.0" in out  # sample std of 60, 61, 62


# --- user results --------------------------------------------------------------------------------------

def _three_seed_results(d: Path, label="MyNet", ucfrep=(0.14, 0.15, 0.16), base=(70.0, 71.0, 75.0), **kw):
    for seed in range(3):
        for task in SEVERE_EIGHT:
            value = ucfrep[seed] if task == "ucfrep" else base[seed]
            write_result(d, task, label, value, seed=seed, **kw)


def test_user_results_mean_std_and_aggregates(tmp_path):
    d = tmp_path / "res"
    _three_seed_results(d)
    obs = load_results([d])
    assert len(obs) == 24
    t = build_table(obs)
    assert t.mean.at["MyNet", "ssv2"] == pytest.approx(72.0)
    assert t.std.at["MyNet", "ssv2"] == pytest.approx(np.std([70, 71, 75], ddof=1))
    assert t.n.at["MyNet", "ssv2"] == 3
    assert t.severe_mean["MyNet"] == pytest.approx((7 * 72.0 + 85.0) / 8)
    assert t.avg_rank["MyNet"] == 1.0
    md = render(t, "md")
    assert "**72.0** ± 2.6" in md and "**0.150** ± 0.01" in md
    assert f"finetune/full {DEFAULT_HASH} (ssv2, gym99, ucf101_1k" in md  # protocol hash in the caption


def test_user_and_published_rows_stay_separate(tmp_path, capsys):
    d = tmp_path / "res"
    _three_seed_results(d, label="MoCo")
    code, out, err = run_cli(["table", str(d), "--with-reference", "--format", "csv"], capsys)
    assert code == 0, err
    rows = {(r["method"], r["provenance"]): r for r in csv.DictReader(io.StringIO(out))}
    assert ("MoCo (published)", "published") in rows and ("MoCo", "user") in rows
    assert float(rows[("MoCo (published)", "published")]["ssv2"]) == pytest.approx(57.1)
    assert float(rows[("MoCo", "user")]["ssv2"]) == pytest.approx(72.0)
    assert rows[("MoCo", "user")]["protocols"].startswith(f"ssv2={DEFAULT_HASH}")
    assert len(rows) == 16


def test_mixed_protocol_hashes_are_refused_naming_the_files(tmp_path, capsys):
    d = tmp_path / "res"
    a = write_result(d, "ssv2", "Net1", 60.0, protocol="a")
    b = write_result(d, "ssv2", "Net2", 61.0, protocol="b")
    write_result(d, "gym99", "Net1", 90.0, protocol="c")
    with pytest.raises(SevereError) as info:
        load_results([d])
    msg = str(info.value)
    assert "ssv2" in msg and str(a) in msg and str(b) in msg
    assert protocol_of("a")[1] in msg and protocol_of("b")[1] in msg
    code, _, err = run_cli(["table", str(d)], capsys)
    assert code != 0 and "protocol" in err and "Traceback" not in err
    # different hashes on different tasks are fine
    b.unlink()
    assert len(load_results([d])) == 2


def test_duplicate_seeds_and_relabelled_checkpoints_are_refused(tmp_path):
    d1 = tmp_path / "a"
    write_result(d1, "ssv2", "Net", 60.0, seed=0)
    d2 = tmp_path / "b"
    write_result(d2, "ssv2", "Net", 61.0, seed=0)
    with pytest.raises(SevereError, match="seed 0"):
        load_results([d1, d2])
    d3 = tmp_path / "c"
    write_result(d3, "gym99", "Net", 61.0, seed=0, sha="other")
    with pytest.raises(SevereError, match="different checkpoints"):
        load_results([d1, d3])


def test_smoke_results_are_flagged(tmp_path):
    d = tmp_path / "res"
    _three_seed_results(d, comparable=False, protocol="smoke")
    t = build_table(load_results([d]))
    assert t.smoke_tasks() == SEVERE_EIGHT
    assert "**72.0** ± 2.6‡" in render(t, "md")
    assert "± 2.6</small>‡" in render(t, "html")
    for fmt in ("md", "html"):
        assert "smoke profile (not comparable with published numbers)" in render(t, fmt)
    latex = render(t, "latex")
    assert r"$^\ddagger$" in latex
    rows = list(csv.DictReader(io.StringIO(render(t, "csv"))))
    assert rows[0]["comparable"] == "False"


def test_partial_results_have_no_mean_or_rank(tmp_path):
    d = tmp_path / "res"
    write_result(d, "ssv2", "Net", 60.0)
    write_result(d, "hmdb51", "Net", 50.0)
    t = build_table(load_results([d]))
    assert [c.task for c in t.columns] == ["ssv2", "hmdb51"]
    md = render(t, "md")
    assert "Mean and rank need all eight SEVERE tasks" in md and "| Mean" not in md
    # with the reference rows the user row is ranked per task but gets no average
    t2 = build_table(load_results([d]).pipe(lambda f: __import__("pandas").concat([load_reference(), f])))
    assert np.isnan(t2.avg_rank["Net"]) and t2.task_ranks.at["Net", "ssv2"] == 4


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "severe-bench/result/v1", "task": {"id": "ssv2"}}))
    with pytest.raises(SevereError, match="lacks 'metric.value'"):
        load_results([bad])
    other = tmp_path / "dir" / "cka.json"
    other.parent.mkdir()
    other.write_text(json.dumps({"cka": 0.5}))
    write_result(tmp_path / "dir", "ssv2", "Net", 60.0)
    assert len(load_results([tmp_path / "dir"])) == 1  # foreign JSON in a directory is skipped
    code, _, err = run_cli(["table"], capsys)
    assert code != 0 and "--with-reference" in err
    code, _, err = run_cli(["table", str(tmp_path / "missing")], capsys)
    assert code != 0 and "does not exist" in err


def test_html_escapes_and_groups(tmp_path):
    d = tmp_path / "res"
    write_result(d, "ssv2", "<script>x</script>", 60.0)
    html = render(build_table(load_results([d])), "html")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<th colspan="1">Domains</th>' in html
