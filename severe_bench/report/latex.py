"""LaTeX text escaping (method names, dataset names, captions come from users and files)."""

from __future__ import annotations

import re

_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    # Unicode that pdflatex cannot typeset without extra packages
    "±": r"$\pm$",
    "↓": r"$\downarrow$",
    "↑": r"$\uparrow$",
    "×": r"$\times$",
    "−": r"$-$",
    "³": r"$^3$",
    "†": r"$^\dagger$",
    "‡": r"$^\ddagger$",
    "–": "--",
    "—": "---",
}
_PATTERN = re.compile("|".join(re.escape(k) for k in _SPECIAL))


def escape(text: str) -> str:
    """Escape LaTeX special characters so ``text`` typesets literally."""
    return _PATTERN.sub(lambda m: _SPECIAL[m.group(0)], str(text))
