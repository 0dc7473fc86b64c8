"""Result JSONs into paper-ready tables and plots.

``results`` reads what ``severe eval`` writes, ``reference`` the published rows shipped with the project,
``aggregate`` computes cells, SEVERE mean and average rank, ``render`` writes md/latex/csv/html, ``plots`` draws.
"""

from .aggregate import SevereTable, build_table
from .reference import load_reference
from .results import load_results

__all__ = ["SevereTable", "build_table", "load_reference", "load_results"]
