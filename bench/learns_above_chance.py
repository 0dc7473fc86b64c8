"""Does each task of a finished run learn well above chance? Its metric against chance, from its result and
predictions files.

"Well above": the run closes at least WELL_ABOVE (a quarter) of the gap between chance and a perfect score
(100 for top-1 / mean class accuracy / mAP, 0 for the counting error). Merely beating chance by a point is
noise on test sets this small, so it does not count.

Chance: top-1 / mean class accuracy 100 / classes; mAP the mean positive rate of the scored classes (a
random scorer's expected AP); counting the error of the best constant guess (the median test count, which
uses the test labels, so it is a generous baseline).

    python bench/learns_above_chance.py RUN_DIR [--append-results bench/RESULTS.md --command "..."]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

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


def rows(run_dir: Path) -> list[dict]:
    out = []
    for path in sorted(run_dir.glob("*/seed*/result.json")):
        res = json.loads(path.read_text())
        pp = path.parent / "predictions.json"
        preds = json.loads(pp.read_text()) if pp.exists() else None
        ch = chance(res, preds)
        value = res["metric"]["value"]
        gap = gap_closed(res["metric"]["name"], value, ch)
        learns = None if gap is None else gap >= WELL_ABOVE
        out.append({"task": res["task"]["id"], "metric": res["metric"]["name"], "value": value, "chance": ch,
                    "gap_closed": gap, "learns": learns, "wall_time_s": res.get("wall_time_s"),
                    "device": res.get("device", {}).get("name"), "precision": res.get("engine", {}).get("precision")})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--append-results", default=None)
    ap.add_argument("--command", default=None)
    args = ap.parse_args(argv)
    table = rows(Path(args.run_dir))
    if not table:
        sys.exit(f"no result.json under {args.run_dir}")
    lines = [f"| task | metric | value | chance | gap to perfect closed | learns (closed >= {WELL_ABOVE:g}) | wall s | device "
             "| precision |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        ch = "-" if r["chance"] is None else f"{r['chance']:.3g}"
        gap = "-" if r["gap_closed"] is None else f"{r['gap_closed']:.2f}"
        lines.append(f"| {r['task']} | {r['metric']} | {r['value']:.4g} | {ch} | {gap} | {r['learns']} | {r['wall_time_s']} | "
                     f"{r['device']} | {r['precision']} |")
    text = "\n".join(lines)
    print(text)
    if args.append_results:
        with open(args.append_results, "a", encoding="utf-8") as f:
            f.write(f"\nBuilt-in synth suite, full (non-smoke) protocol, from scratch (`{args.command}`):\n\n{text}\n\n")
    return table


if __name__ == "__main__":
    main()
