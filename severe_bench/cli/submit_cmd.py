"""``severe submit``: one checkpoint's results (all tasks and seeds found) as a leaderboard bundle."""

from __future__ import annotations

import click


@click.command("submit")
@click.argument("results_dir", type=click.Path(file_okay=False))
@click.option("--name", required=True, help="The entry's name on the board (e.g. the method's name).")
@click.option("--paper", default=None, help="URL of the paper describing the method.")
@click.option("--backbone", default=None, help="Backbone as the board shows it (default from the architecture: "
                                                 "R(2+1)D-18, ViT-B, ...).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Bundle to write (a .zip).")
def submit(results_dir, name, paper, backbone, out):
    """Bundle RESULTS_DIR (a `severe eval --out` folder of one checkpoint) for `severe leaderboard add`.

    The bundle holds every result.json with its predictions.json (per-video scores and labels), the checkpoint
    sha256, the environment and a manifest of content hashes. All eight SEVERE tasks under the official
    protocols qualify for the main board; fewer make a partial entry.
    """
    from ..leaderboard.bundle import write_bundle
    from ..report.layout import SEVERE_TASKS

    manifest = write_bundle(results_dir, out, name=name, paper=paper, backbone=backbone)
    tasks = sorted({r["task"] for r in manifest["runs"]})
    click.echo(f"wrote {out}: {len(manifest['runs'])} results of {len(tasks)} tasks ({', '.join(tasks)}), "
               f"checkpoint {(manifest['checkpoint']['sha256'] or manifest['checkpoint']['name'] or '-')[:16]}")
    missing = [t for t in SEVERE_TASKS if t not in tasks]
    if missing:
        click.echo(f"partial entry: the main board needs all eight SEVERE tasks; missing {', '.join(missing)}")
