"""``severe table``: result JSONs (and/or the published rows) as a SEVERE table."""

from __future__ import annotations

from pathlib import Path

import click

from .observations import gather_observations


@click.command("table")
@click.argument("results", nargs=-1, type=click.Path())
@click.option("--with-reference", is_flag=True,
              help="Add the published rows (thesis Tables 4.4/B.3 and 5.8) shipped with severe-bench.")
@click.option("--format", "fmt", type=click.Choice(["md", "latex", "csv", "html"]), default="md", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Write here instead of standard output.")
@click.option("--ties", type=click.Choice(["min", "average"]), default="min", show_default=True,
              help="Tie rule of the per-task ranks: min = ties share the best rank (1,2,2,4); "
                   "average = mean of the spanned ranks (1,2.5,2.5,4).")
@click.option("--sort", type=click.Choice(["none", "mean", "rank"]), default="none", show_default=True,
              help="Row order: as given (published rows first), by SEVERE mean, or by average rank.")
@click.option("--tasks", "task_list", default=None, help="Comma-separated task ids to show (default: all found).")
@click.option("--rank-colors", is_flag=True, help="LaTeX: colour cells by rank as in the paper (needs xcolor[table]).")
@click.option("--skip-invalid", is_flag=True,
              help="Leave out damaged or inconsistent result files (listed in a warning) instead of failing.")
@click.option("--standalone", is_flag=True, help="LaTeX: a complete compilable document.")
def table(results, with_reference, fmt, out, ties, sort, task_list, rank_colors, standalone, skip_invalid):
    """Tabulate RESULTS (result JSON files or directories of them) in the SEVERE layout.

    Each task column holds results of one protocol hash only; mixing is refused. Cells are mean ± std over
    seeds; the SEVERE mean enters UCF-RC as (1 − error) × 100; the average rank's tie rule is stated in the
    caption.
    """
    from ..report import build_table
    from ..report.render import render

    observations = gather_observations(results, with_reference, "tabulate", skip_invalid)
    tasks = [t.strip() for t in task_list.split(",") if t.strip()] if task_list else None
    built = build_table(observations, tie_rule=ties, sort=sort, tasks=tasks)
    text = render(built, fmt, rank_colors=rank_colors, standalone=standalone)
    if out:
        from ..atomic import atomic_write_text

        atomic_write_text(Path(out), text)
        click.echo(f"wrote {out}", err=True)
    else:
        click.echo(text, nl=False)
