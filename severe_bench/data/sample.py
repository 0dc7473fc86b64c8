"""One annotated video, as every reader returns it."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Union

# int: class index; tuple[int, ...]: multi-label class indices (may be empty); float: repetition count.
Label = Union[int, tuple, float]


@dataclass(frozen=True)
class Sample:
    video: str  # path relative to the dataset root (e.g. "UCF-101/ApplyEyeMakeup/v_..._g08_c01.avi")
    label: Label
    id: str = ""  # the dataset's own id (SSv2 "74225", Charades "46GP8", clip name, ...)
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def class_indices(self) -> tuple:
        """The class indices the label names: ``(index,)``, the multi-label tuple, or ``()`` for a count."""
        if isinstance(self.label, tuple):
            return self.label
        if isinstance(self.label, numbers.Integral):
            return (int(self.label),)
        return ()

    def label_str(self) -> str:
        """Label as `severe data list` prints it: index, `;`-joined indices, or the count."""
        if isinstance(self.label, tuple):
            return ";".join(str(i) for i in self.label)
        if isinstance(self.label, float) and self.label.is_integer():
            return str(int(self.label))
        return str(self.label)
