"""``severe tasks list | show ID``."""

from __future__ import annotations

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


@tasks.command("show")
@click.argument("task_id")
@click.option("--profile", default="full", show_default=True)
@click.option("--track", type=click.Choice(["cnn", "vit"]), default=None, help="Protocol track (default: the task's own).")
def show_cmd(task_id, profile, track):
    """The fully resolved task (includes, profile and track applied) and its protocol hash."""
    from ..registry import get_task

    t = get_task(task_id, profile=profile, track=track)
    click.echo(f"# task {t.id}  profile {t.profile}  protocol hash {t.protocol_hash}"
               f"{'' if t.comparable else '  (NOT comparable with published numbers)'}")
    click.echo(f"# file {t.path}")
    click.echo(yaml.safe_dump(t.config, sort_keys=False, default_flow_style=None, width=110).rstrip())
