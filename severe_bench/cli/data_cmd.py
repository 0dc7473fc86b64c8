"""``severe data``: look at a task's official annotations (list samples, check files on disk)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import click

from ..errors import SevereError
from .options import data_root_option, shell_command

SPLITS = ("train", "test")


def _task_and_root(task_id: str, root: str | None):
    from ..registry import get_task, locate_data_root

    task = get_task(task_id)
    return task, locate_data_root(task, root)


@click.group("data")
def data():
    """Inspect a task's dataset: list its samples, check that the official files are in place."""


@data.command("list")
@click.argument("task_id")
@data_root_option()
@click.option("--split", type=click.Choice(SPLITS), default="train", show_default=True)
@click.option("--format", "out_format", type=click.Choice(["csv", "table"]), default="csv", show_default=True)
@click.option("--full", is_flag=True, help="For a few-sample task's train split: the whole list, not its subset.")
def list_cmd(task_id, data_root, split, out_format, full):
    """One row per sample of TASK_ID's SPLIT: video (root-relative) and label.

    The label is the class index (after the task's label filter), `;`-joined indices for multi-label
    tasks, or the repetition count for counting tasks. For a few-sample task (ucf101_1k, gym99_1k) the train
    split is the subset the task trains on (PROTOCOL.md §3); its size, the full list's size and the subset's
    sha256 go to stderr.
    """
    from ..data.subset import sample_list_hash
    from ..registry import read_split, train_lists

    task, located = _task_and_root(task_id, data_root)
    if split == "train" and task.train_subset:
        whole, subset = train_lists(task, located.path)
        samples = whole if full else subset
        click.echo(f"{task.id} train: subset of {len(subset)} of the full list's {len(whole)} videos "
                   f"({_subset_rule_text(task.train_subset)}; sha256 {sample_list_hash(subset)[:16]})"
                   + ("; listing the full list (--full)" if full else ""), err=True)
    else:
        samples = read_split(task, located.path, split)
    rows = [(s.video, s.label_str()) for s in samples]
    if out_format == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["video", "label"])
        writer.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
    else:
        from tabulate import tabulate

        click.echo(tabulate(rows, headers=["video", "label"], tablefmt="simple", disable_numparse=True))


def _subset_rule_text(rule: dict) -> str:
    extra = ", videos missing on disk dropped first" if rule.get("drop_missing_videos") else ""
    return f"{rule.get('rule')} {rule.get('size')}, seed {rule.get('seed')}{extra}"


def check_split(task, root: Path, split: str, decode: bool = False) -> dict:
    """What is present and what is missing for one split (never raises for a user-side problem); with
    ``decode``, every present video is decoded in full: undecodable and truncated ones are listed."""
    from ..data.annotations import required_files
    from ..registry import read_split_annotations

    fmt = task.dataset["format"]
    report = {"samples": 0, "classes_seen": 0, "annotation_files": [], "missing_annotation_files": [],
              "missing_videos": [], "num_missing_videos": 0, "skipped": [], "labels_out_of_range": [],
              "error": None}
    try:
        needed = required_files(fmt, task.dataset, split)
    except SevereError as exc:
        report["error"] = str(exc)
        return report
    report["annotation_files"] = needed
    report["missing_annotation_files"] = [str(root / rel) for rel in needed if not (root / rel).exists()]
    if report["missing_annotation_files"]:
        return report
    try:
        ann = read_split_annotations(task, root, split)  # one parse for the samples and the skipped list
        samples = ann.samples
    except SevereError as exc:
        report["error"] = str(exc)
        return report
    report["samples"] = len(samples)
    if split == "train" and task.train_subset:
        from ..data.subset import apply_train_subset, sample_list_hash

        try:
            subset = apply_train_subset(samples, task.train_subset, root)
        except SevereError as exc:
            report["error"] = str(exc)
            return report
        report["train_subset"] = {"rule": dict(task.train_subset), "samples": len(subset),
                                  "sha256": sample_list_hash(subset),
                                  "classes": len({i for s in subset for i in s.class_indices()})}
    report["skipped"] = [f"{vid}: {why}" for vid, why in ann.skipped]
    report["duplicates"] = list(ann.duplicates)
    seen = sorted({i for s in samples for i in s.class_indices()})
    report["classes_seen"] = len(seen)
    report["_seen"] = set(seen)  # for the official class count over both splits; not printed
    num_classes = task.dataset.get("num_classes")
    if num_classes is not None:
        report["labels_out_of_range"] = [i for i in seen if not 0 <= i < num_classes]
    videos = sorted({s.video for s in samples})
    from ..video.frames import video_present

    report["missing_videos"] = [str(root / v) for v in videos if not video_present(root / v)]
    report["num_missing_videos"] = len(report["missing_videos"])
    if decode:
        from ..video.reader import full_decode_check

        absent = set(report["missing_videos"])
        problems = {str(root / v): full_decode_check(root / v) for v in videos if str(root / v) not in absent}
        report["truncated_videos"] = {p: why for p, why in problems.items() if why and "truncated" in why}
        report["undecodable_videos"] = {p: why for p, why in problems.items()
                                        if why and p not in report["truncated_videos"]}
    return report


def check_task(task, root: Path, root_how: str | None = None, decode: bool = False) -> dict:
    from ..data.completeness import completeness

    splits = {split: check_split(task, root, split, decode) for split in SPLITS}
    seen = set().union(*(r.pop("_seen", set()) for r in splits.values()))
    readable = all(not r["error"] and not r["missing_annotation_files"] for r in splits.values())
    counts = None
    if readable:  # official counts are compared only when both lists could be read
        counts = completeness(task, {**{sp: r["samples"] for sp, r in splits.items()}, "classes": len(seen)},
                              {sp: r["num_missing_videos"] for sp, r in splits.items()})
    ok = readable and all(not r["missing_videos"] and not r["labels_out_of_range"] and not r.get("truncated_videos")
                          and not r.get("undecodable_videos") for r in splits.values()) \
        and (counts is None or counts["matches"])
    return {
        "task": task.id,
        "dataset": task.dataset.get("name"),
        "format": task.dataset["format"],
        "root": str(root),
        "root_how": root_how,
        "source": task.dataset.get("source"),
        "num_classes": task.dataset.get("num_classes"),
        "splits": splits,
        "official": counts,
        "ok": ok,
    }


def _print_report(rep: dict, show: int) -> None:
    click.echo(f"task {rep['task']} (dataset {rep['dataset']}, format {rep['format']})")
    click.echo(f"root: {rep['root']}" + (f" ({rep['root_how']})" if rep.get("root_how") else ""))
    click.echo(f"classes: {rep['num_classes']}")
    for split, r in rep["splits"].items():
        click.echo(f"[{split}] samples: {r['samples']}, classes seen: {r['classes_seen']}")
        if r.get("train_subset"):
            sub = r["train_subset"]
            listing = shell_command("severe", "data", "list", rep["task"])
            click.echo(f"  trains on a subset: {sub['samples']} of these {r['samples']} videos, {sub['classes']} classes "
                       f"({_subset_rule_text(sub['rule'])}; sha256 {sub['sha256'][:16]}; `{listing}`)")
        for path in r["missing_annotation_files"]:
            click.echo(f"  missing annotation file: {path}")
        if r["error"]:
            click.echo(f"  error: {r['error']}")
        if r["labels_out_of_range"]:
            click.echo(f"  labels outside 0..{rep['num_classes'] - 1}: {r['labels_out_of_range'][:10]}")
        if r.get("duplicates"):
            click.echo(f"  duplicate entries removed: {len(r['duplicates'])} (e.g. {r['duplicates'][0]!r})")
        if r["skipped"]:
            click.echo(f"  dropped as in the reference code: {len(r['skipped'])} (e.g. {r['skipped'][0]})")
        for key, title in (("undecodable_videos", "undecodable videos"), ("truncated_videos", "truncated videos")):
            bad = r.get(key) or {}
            if bad:
                click.echo(f"  {title}: {len(bad)} of {r['samples']}")
                for path, why in list(bad.items())[:show]:
                    click.echo(f"    {path}: {why}")
        if r["num_missing_videos"]:
            click.echo(f"  missing videos: {r['num_missing_videos']} of {r['samples']}")
            for path in r["missing_videos"][:show]:
                click.echo(f"    {path}")
            if r["num_missing_videos"] > show:
                click.echo(f"    ... and {r['num_missing_videos'] - show} more (--json lists all)")
    counts = rep.get("official")
    if counts and counts["official"]:
        off = counts["official"]
        click.echo(f"official counts ({off.get('of', 'official lists')}): train {off.get('train')}, test {off.get('test')}"
                   + (f", classes {off['classes']}" if off.get("classes") is not None else "")
                   + (" - the lists match" if counts["matches"] else ""))
        for text in counts["differences"]:
            click.echo(f"  differs: {text}")
    for text in (counts or {}).get("notes", []):
        click.echo(f"  note: {text}")
    if rep["ok"]:
        decoded = any("truncated_videos" in r for r in rep["splits"].values())
        click.echo("ok: all annotation files and videos are present"
                   + (" and decode in full" if decoded else " (--decode also decodes every video)"))
    else:
        click.echo(f"incomplete; the official files come from: {rep['source'] or 'see the task file'}")


@data.command("check")
@click.argument("task_id")
@data_root_option()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--show", type=int, default=20, show_default=True, help="Missing videos to name per split (text output).")
@click.option("--decode", is_flag=True,
              help="Also decode every video in full: list undecodable ones and ones that decode fewer frames than "
                   "their container declares (truncated). Slow on a full dataset.")
def check_cmd(task_id, data_root, as_json, show, decode):
    """Counts per split, classes, and every missing annotation file or video of TASK_ID.

    Compares the lists with the official counts the task declares (videos per split, classes) and explains
    a difference (e.g. a FineGym v1.1 list where SEVERE used v1.0). Exits non-zero when anything is missing or
    unreadable, or the lists differ from the official counts.
    """
    task, located = _task_and_root(task_id, data_root)
    rep = check_task(task, Path(located.path), root_how=located.how, decode=decode)
    if as_json:
        click.echo(json.dumps(rep, indent=2))
    else:
        _print_report(rep, show)
    if not rep["ok"]:
        # SystemExit, not click's Exit: `severe` runs click with standalone_mode=False, which swallows Exit codes.
        sys.exit(1)
