"""Does each task of a finished run learn well above chance? Its metric against chance, from its result and
predictions files.

"Well above": the run closes at least WELL_ABOVE (a quarter) of the gap between chance and a perfect score
(100 for top-1 / mean class accuracy / mAP, 0 for the counting error). Merely beating chance by a point is
noise on test sets this small, so it does not count.

Chance: top-1 / mean class accuracy 100 / classes; mAP the mean positive rate of the scored classes (a
random scorer's expected AP); counting the error of the best constant guess (the median test count, which
uses the test labels, so it is a generous baseline).

A counting task's test procedure has priors of its own (the coarse search's grid of cycle lengths), so a model
that has learnt nothing can beat the median guess (bench/RESULTS.md, synth_count 2026-12-07). ``--untrained
DIR`` takes a run of the same tasks without training (the seed's random weights, the rest of the protocol
unchanged; ``--make-untrained-tasks DEST`` writes such task files for the synth suite's counting tasks, run
them with ``SEVERE_TASKS_DIR=DEST``): where a task has one, the bar is the stricter of chance and the
untrained model's score.

    python bench/learns_above_chance.py RUN_DIR [--untrained DIR] [--append-results bench/RESULTS.md --command "..."]
    python bench/learns_above_chance.py --make-untrained-tasks DEST
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

WELL_ABOVE = 0.25
PERFECT = {"top1": 100.0, "mean_class_accuracy": 100.0, "map": 100.0, "counting_error": 0.0}


def chance(result: dict, preds: dict | None) -> float | None:
    name = result["metric"]["name"]
    if name in ("top1", "mean_class_accuracy"):
        return 100.0 / int(result["data"]["num_classes"])
    if preds is None:
        return None
    videos = list(preds["videos"].values())
    if name == "map":
        c = int(preds["num_classes"])
        y = np.zeros((len(videos), c))
        for i, v in enumerate(videos):
            y[i, v["labels"]] = 1
        pos = y.mean(0)
        return 100.0 * float(pos[pos > 0].mean())
    if name == "counting_error":
        gt = np.array([v["gt"] for v in videos], float)
        return float(np.mean(np.abs(np.median(gt) - gt) / gt))
    return None


def gap_closed(metric: str, value, ch) -> float | None:
    """Fraction of the way from chance to a perfect score (negative: worse than chance)."""
    if ch is None or value is None or metric not in PERFECT or PERFECT[metric] == ch:
        return None
    return (value - ch) / (PERFECT[metric] - ch)


def _results(run_dir: Path):
    for path in sorted(Path(run_dir).glob("*/seed*/result.json")):
        yield path, json.loads(path.read_text())


def untrained_scores(run_dir: Path) -> dict:
    """(task id, seed) -> (metric name, value) of a run without training."""
    return {(res["task"]["id"], res.get("seed")): (res["metric"]["name"], res["metric"]["value"])
            for _, res in _results(run_dir)}


def stricter(metric: str, a, b):
    """Of two baselines, the one closer to a perfect score (None: the other)."""
    if a is None or b is None:
        return b if a is None else a
    return a if abs(PERFECT[metric] - a) <= abs(PERFECT[metric] - b) else b


def rows(run_dir: Path, untrained_dir: Path | None = None) -> list[dict]:
    untrained = untrained_scores(untrained_dir) if untrained_dir else {}
    out = []
    for path, res in _results(run_dir):
        pp = path.parent / "predictions.json"
        preds = json.loads(pp.read_text()) if pp.exists() else None
        metric, value = res["metric"]["name"], res["metric"]["value"]
        ch = chance(res, preds)
        name_u, value_u = untrained.get((res["task"]["id"], res.get("seed")), (metric, None))
        if name_u != metric:
            sys.exit(f"{res['task']['id']}: the untrained run scores {name_u}, this run {metric}")
        bar = stricter(metric, ch, value_u) if metric in PERFECT else ch
        gap = gap_closed(metric, value, bar)
        learns = None if gap is None else gap >= WELL_ABOVE
        out.append({"task": res["task"]["id"], "metric": metric, "value": value, "chance": ch,
                    "untrained": value_u, "bar": bar, "gap_closed": gap, "learns": learns,
                    "wall_time_s": res.get("wall_time_s"), "device": res.get("device", {}).get("name"),
                    "precision": res.get("engine", {}).get("precision")})
    return out


def make_untrained_tasks(dest: Path, suite: str = "synth") -> list[str]:
    """A copy of the task files in which the suite's counting tasks train for 0 passes (every other value kept),
    for ``SEVERE_TASKS_DIR``. Returns the ids of the tasks changed."""
    from severe_bench.registry import get_task, suite_tasks, tasks_dir

    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(tasks_dir(), dest)
    changed = []
    for task_id in suite_tasks(suite):
        if get_task(task_id).protocol.get("name") != "counting":
            continue
        path = dest / f"{task_id}.yaml"
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        cfg.setdefault("protocol", {}).setdefault("schedule", {})["passes"] = 0
        path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        changed.append(task_id)
    return changed


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", nargs="?")
    ap.add_argument("--untrained", default=None, help="a run of the same tasks without training")
    ap.add_argument("--make-untrained-tasks", default=None, metavar="DEST",
                    help="write task files whose synth counting tasks train for 0 passes, and exit")
    ap.add_argument("--append-results", default=None)
    ap.add_argument("--command", default=None)
    args = ap.parse_args(argv)
    if args.make_untrained_tasks:
        print(" ".join(make_untrained_tasks(Path(args.make_untrained_tasks))))
        return None
    if not args.run_dir:
        ap.error("RUN_DIR is required")
    table = rows(Path(args.run_dir), Path(args.untrained) if args.untrained else None)
    if not table:
        sys.exit(f"no result.json under {args.run_dir}")

    def fmt(x, spec):
        return "-" if x is None else format(x, spec)

    lines = [f"| task | metric | value | chance | untrained | gap to perfect closed | learns (closed >= {WELL_ABOVE:g}) "
             "| wall s | device | precision |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['task']} | {r['metric']} | {r['value']:.4g} | {fmt(r['chance'], '.3g')} | "
                     f"{fmt(r['untrained'], '.4g')} | {fmt(r['gap_closed'], '.2f')} | {r['learns']} | "
                     f"{r['wall_time_s']} | {r['device']} | {r['precision']} |")
    text = "\n".join(lines)
    print(text)
    if args.append_results:
        with open(args.append_results, "a", encoding="utf-8") as f:
            f.write(f"\nBuilt-in synth suite, full (non-smoke) protocol, from scratch (`{args.command}`):\n\n{text}\n\n")
    return table


if __name__ == "__main__":
    main()
