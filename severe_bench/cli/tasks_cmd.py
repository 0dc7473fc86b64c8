"""``severe tasks list | show ID``."""

from __future__ import annotations

from pathlib import Path

import click
import yaml


@click.group()
def tasks():
    """The task registry (tasks/*.yaml) and the named suites."""


@tasks.command("list")
@click.option("--suite", default=None, help="Only the tasks of this suite.")
@click.option("--profile", default="full", show_default=True, help="Profile whose protocol hash to show.")
def list_cmd(suite, profile):
    """One line per task: id, factor, dataset, classes, metric, protocol and its hash; then the suites."""
    from tabulate import tabulate

    from ..registry import get_task, list_task_ids, load_suites, suite_tasks

    ids = suite_tasks(suite) if suite else list_task_ids()
    rows = []
    for tid in ids:
        t = get_task(tid, profile=profile)
        arrow = "" if t.metric["higher_is_better"] else " (lower better)"
        rows.append([t.id, t.factor, t.dataset.get("name"), t.num_classes or "-", t.metric["name"] + arrow,
                     t.protocol["name"], t.protocol_hash])
    click.echo(tabulate(rows, headers=["task", "factor", "dataset", "classes", "metric", "protocol", "hash"]))
    click.echo("\nsuites:")
    for name, members in load_suites().items():
        click.echo(f"  {name}: {' '.join(members)}")


PROTOCOL_DOC = "docs/PROTOCOL.md"  # every value, its source, and the thesis/code choices


def _scalar(value) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
    return text[:-4].rstrip() if text.endswith("\n...") else text


def render_config(config: dict, marks: dict[str, str] | None = None, path: str = "", indent: int = 0) -> list[str]:
    """The resolved config as YAML lines; a value whose dotted path is in ``marks`` gets that comment."""
    marks = marks or {}
    lines = []
    for key, value in config.items():
        here = f"{path}.{key}" if path else str(key)
        pad = " " * indent
        if isinstance(value, dict) and value and here not in marks:
            lines.append(f"{pad}{key}:")
            lines += render_config(value, marks, here, indent + 2)
        else:
            note = f"  # {marks[here]}" if here in marks else ""
            lines.append(f"{pad}{key}: {_scalar(value)}{note}")
    return lines


def _checkpoint_info(name: str) -> dict:
    """What ``severe eval`` knows about a registry checkpoint (or ``scratch``) before loading its file."""
    from ..checkpoints.registry import load_registry

    reg = load_registry()
    if name == "scratch":
        return {"name": "scratch", "layout": "scratch", "architecture": None,
                "overrides": list(reg.scratch_overrides), "normalisation": None}
    if name not in reg.entries and Path(name).expanduser().exists():  # a file or model folder: detect its layout
        from ..checkpoints import load_checkpoint

        return load_checkpoint(name, count_flops=False).info
    e = reg.get(name)
    return {"name": e.name, "layout": e.layout, "architecture": e.architecture, "overrides": list(e.overrides),
            "normalisation": e.normalisation}


@tasks.command("show")
@click.argument("task_id")
@click.option("--profile", default="full", show_default=True)
@click.option("--track", type=click.Choice(["cnn", "vit"]), default=None,
              help="Protocol track (default: the checkpoint's, else the task's own).")
@click.option("--checkpoint", "checkpoint", default=None, metavar="NAME",
              help="A registry checkpoint, 'scratch' or a checkpoint file: print the protocol that runs for it, its scoped "
                   "overrides applied and marked (PROTOCOL.md §3.3).")
def show_cmd(task_id, profile, track, checkpoint):
    """The fully resolved task (includes, profile and track applied) and its protocol hash. Every value and
    its source: docs/PROTOCOL.md."""
    from ..checkpoints.overrides import overridden_paths, overrides_hash
    from ..engine.runner import effective_normalisation, for_checkpoint, track_of
    from ..registry import get_task

    info = _checkpoint_info(checkpoint) if checkpoint else None
    if track is None and info and info["architecture"]:
        track = track_of(info["architecture"])
    t = get_task(task_id, profile=profile, track=track)
    click.echo(f"# task {t.id}  profile {t.profile}  protocol hash {t.protocol_hash}"
               f"{'' if t.comparable else '  (NOT comparable with published numbers)'}")
    click.echo(f"# file {t.path}")
    click.echo(f"# values and their sources: {PROTOCOL_DOC} (§{_section(t)})")
    marks = {}
    config = t.config
    if info:
        run, applied = for_checkpoint(t, info)
        config = run.config
        marks = {f"protocol.{p}": f"override ({ck}; protocol value {_scalar(old)})"
                 for p, (ck, old) in overridden_paths(applied).items()}
        norm = effective_normalisation(run.protocol, info)
        if "normalisation" in run.protocol and norm != run.protocol["normalisation"]:
            config = {**config, "protocol": {**run.protocol, "normalisation": norm}}
            marks["protocol.normalisation"] = f"checkpoint {info['name']}'s own input convention"
        if applied:
            click.echo(f"# checkpoint {info['name']}: {len(applied)} scoped override(s) applied, overrides hash "
                       f"{overrides_hash(applied)} (the protocol hash stays the task's)")
            for a in applied:
                click.echo(f"#   {a['source'] or 'no source given'}")
        else:
            click.echo(f"# checkpoint {info['name']}: no override applies to this task; it runs the task's protocol")
    click.echo("\n".join(render_config(config, marks)))


def _section(task) -> str:
    """The PROTOCOL.md section of a task's protocol."""
    name = task.protocol.get("name")
    if task.config.get("track") == "vit":
        return "6"
    return {"linear": "4", "linear_frozen_bn": "4", "linear_cached": "4", "counting": "5.1",
            "finetune_multilabel": "5.2"}.get(name, "3")
