"""The observation frame of the commands that read results (``table``, ``plot``): the published rows shipped
with severe-bench and/or the user's result JSONs, in that order."""

from __future__ import annotations

import pandas as pd

from ..errors import SevereError


def gather_observations(results: tuple[str, ...], with_reference: bool, purpose: str,
                        skip_invalid: bool = False) -> pd.DataFrame:
    """Observations from RESULTS (result JSON files or directories) and, with ``--with-reference``, the published
    rows; ``purpose`` ("tabulate", "plot") names what the command could not do without either. Invalid result
    files are an error, or with ``skip_invalid`` a warning on standard error that lists them."""
    import click

    from ..report import load_reference, load_results

    if not results and not with_reference:
        raise SevereError(f"nothing to {purpose}: pass result JSONs/directories and/or --with-reference")
    frames = []
    if with_reference:
        frames.append(load_reference())
    if results:
        user = load_results(results, skip_invalid=skip_invalid, warn=lambda m: click.echo(m, err=True))
        if user.empty:
            raise SevereError(f"no severe-bench result JSONs found under: {', '.join(results)}")
        frames.append(user)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
