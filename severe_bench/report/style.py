"""One look for every figure: fonts, sizes, colours per factor, and how published rows differ from the user's.

Colours are the Okabe-Ito palette (readable with the common colour-vision deficiencies and in greyscale print).
Each SEVERE factor keeps its colour in every figure; published rows are drawn light and open, the user's own
results solid with a dark edge. Text is embedded as TrueType (``pdf.fonttype 42``) so PDFs stay vector and
editable, and no axis ever uses matplotlib's offset notation ("1e-9+1.875e1").
"""

from __future__ import annotations

import contextlib
import functools

import matplotlib
from matplotlib.colors import to_rgb
from matplotlib.ticker import MaxNLocator, ScalarFormatter

FACTOR_COLORS = {
    "Existing": "#4D4D4D",  # UCF101, the benchmark SEVERE compares against
    "Domains": "#0072B2",
    "Samples": "#E69F00",
    "Actions": "#009E73",
    "Tasks": "#CC79A7",
    "Other": "#D55E00",
}
USER_EDGE = "#1A1A1A"
PUBLISHED_GREY = "#8C8C8C"
HIGHLIGHT = "#C0392B"  # the checkpoint a summary page is about

# Method colours where a figure needs one per method (sample-size curves): Okabe-Ito, then tab20.
METHOD_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

# single-column and full-width figure widths of a two-column paper (inches)
COLUMN_WIDTH = 3.4
PAGE_WIDTH = 7.0

RC = {
    "font.family": "DejaVu Sans",  # ships with matplotlib: the same glyphs on every machine
    "font.size": 7.5,
    "axes.titlesize": 8,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 6.5,
    "ytick.labelsize": 6.5,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "axes.grid": False,
    "grid.linewidth": 0.4,
    "grid.color": "#D9D9D9",
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "axes.formatter.useoffset": False,
    "axes.formatter.limits": (-4, 5),
    "lines.linewidth": 1.0,
    "errorbar.capsize": 1.5,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "savefig.dpi": 200,
}


def factor_color(group: str) -> str:
    return FACTOR_COLORS.get(group, FACTOR_COLORS["Other"])


def light(color, amount: float = 0.6) -> tuple:
    """``color`` mixed with white (``amount`` 0: unchanged, 1: white)."""
    r, g, b = to_rgb(color)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def method_colors(n: int) -> list:
    from matplotlib import colormaps

    if n <= len(METHOD_COLORS):
        return METHOD_COLORS[:n]
    cmap = colormaps["tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plain_axis(axis, nbins: int = 4, integer: bool = False) -> None:
    """Round tick values, no offset or scientific notation."""
    axis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 5, 10], integer=integer, min_n_ticks=2))
    fmt = ScalarFormatter(useOffset=False)
    fmt.set_scientific(False)
    axis.set_major_formatter(fmt)


@contextlib.contextmanager
def paper_style():
    with matplotlib.rc_context(RC):
        yield


def styled(fn):
    """Run a figure-drawing function inside ``paper_style`` (artists read rcParams when they are made)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with paper_style():
            return fn(*args, **kwargs)

    return wrapper
