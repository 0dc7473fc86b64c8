"""``severe leaderboard export``: the board as a LaTeX or Markdown table through the project's table code."""

from __future__ import annotations

from pathlib import Path

from ..errors import SevereError
from ..report.render import render
from .board import load_board


def export_board(db: Path, fmt: str = "latex", which: str = "main", rank_colors: bool = False,
                 standalone: bool = False) -> str:
    """The main board (published + qualifying entries, sorted by average rank) or the partial entries."""
    board = load_board(db)
    table = board.main if which == "main" else board.partial
    if table is None:
        raise SevereError("the board has no partial entries to export")
    return render(table, fmt, rank_colors=rank_colors, standalone=standalone)
