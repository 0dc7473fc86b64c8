"""``fvcore.nn`` modules, imported without fvcore's import-time deprecation warning.

``fvcore.nn`` imports its focal loss, which calls ``torch.jit.script`` at import time; recent torch deprecates
that with a ``FutureWarning`` that every fine-tune (precise BatchNorm) and every FLOP count would print,
although nothing here uses the focal loss. Only that one warning, and only during the import, is silenced.
"""
from __future__ import annotations

import importlib
import sys
import warnings
from types import ModuleType


def fvcore_nn(module: str = "fvcore.nn") -> ModuleType:
    """Import ``module`` (``fvcore.nn`` or one of its submodules), ignoring the ``torch.jit.script`` notice."""
    if module != "fvcore.nn" and not module.startswith("fvcore.nn."):
        raise ValueError(f"not an fvcore.nn module: {module!r}")
    if module in sys.modules:  # imported already: no need to touch the process-wide warning filters again
        return sys.modules[module]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
        return importlib.import_module(module)
