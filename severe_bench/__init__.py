"""severe-bench: the SEVERE video generalisation benchmark as one installable, tested harness."""

__version__ = "0.1.0"
