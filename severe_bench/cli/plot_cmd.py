"""``severe plot``: figures from result JSONs (PNG and PDF)."""

from __future__ import annotations

from pathlib import Path

import click

from ..atomic import check_writable_dir
from ..errors import SevereError
from .observations import gather_observations

KINDS = ("factor-bars", "sample-curve", "scatter", "summary")


@click.command("plot")
@click.argument("results", nargs=-1, type=click.Path())
@click.option("--kind", "kinds", type=click.Choice(KINDS + ("all",)), multiple=True, required=True,
              help="Figure to draw (repeatable): factor-bars, sample-curve, scatter (each task against UCF101 "
                   "with Pearson and Kendall correlation), summary (one page per checkpoint), or all.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Output directory.")
@click.option("--with-reference", is_flag=True, help="Include the published rows shipped with severe-bench.")
@click.option("--skip-invalid", is_flag=True,
              help="Leave out damaged or inconsistent result files (listed in a warning) instead of failing.")
@click.option("--ties", type=click.Choice(["min", "average"]), default="min", show_default=True,
              help="Tie rule of the ranks shown in summaries.")
def plot(results, kinds, out_dir, with_reference, ties, skip_invalid):
    """Draw figures from RESULTS (result JSON files or directories)."""
    from ..report import build_table, plots

    observations = gather_observations(results, with_reference, "plot", skip_invalid)
    wanted = KINDS if "all" in kinds else tuple(dict.fromkeys(kinds))
    out = check_writable_dir(Path(out_dir), "--out")  # a clear error before any figure is drawn
    table = build_table(observations, tie_rule=ties)
    draw = {
        "factor-bars": lambda: plots.factor_bars(table, out),
        "sample-curve": lambda: plots.sample_curves(observations, out),
        "scatter": lambda: plots.scatter_vs_ucf101(table, out),
        "summary": lambda: plots.summaries(table, observations, out),
    }
    for kind in wanted:
        try:
            written = draw[kind]()
        except SevereError as exc:
            if "all" not in kinds:
                raise
            click.echo(f"skipped {kind}: {exc}", err=True)  # "all" draws what the results allow
            continue
        for p in written:
            click.echo(str(p))
