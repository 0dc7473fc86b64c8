"""The SEVERE table layout: which tasks form which factor group, how each column is titled and formatted.

The eight SEVERE experiments (PROTOCOL.md §1) make up the mean and the average rank; UCF101 is shown in an
"Existing" group as in the thesis (Table 4.4) but never enters the aggregates. Any other task found in the
results is shown in an "Other" group, also outside the aggregates.
"""

from __future__ import annotations

from dataclasses import dataclass

# (factor group title, task id) in the paper's column order
SEVERE_GROUPS: list[tuple[str, list[str]]] = [
    ("Domains", ["ssv2", "gym99"]),
    ("Samples", ["ucf101_1k", "gym99_1k"]),
    ("Actions", ["fx_s1", "ub_s1"]),
    ("Tasks", ["ucfrep", "charades"]),
]
SEVERE_TASKS: list[str] = [t for _, tasks in SEVERE_GROUPS for t in tasks]
EXISTING_TASKS: list[str] = ["ucf101"]

# Short column titles as printed in the paper; ``latex`` variants where plain text would not typeset.
_TITLES = {
    "ucf101": ("UCF101", "UCF101"),
    "hmdb51": ("HMDB51", "HMDB51"),
    "ssv2": ("SSv2", "SSv2"),
    "gym99": ("Gym99", "Gym99"),
    "ucf101_1k": ("UCF (10³)", r"UCF ($10^3$)"),
    "gym99_1k": ("Gym99 (10³)", r"Gym99 ($10^3$)"),
    "fx_s1": ("FX-S1", "FX-S1"),
    "ub_s1": ("UB-S1", "UB-S1"),
    "ucfrep": ("UCF-RC", "UCF-RC"),
    "charades": ("Charades", "Charades"),
    "gym_vault": ("Vault", "Vault"),
    "gym_floor": ("Floor", "Floor"),
    "gym288": ("Gym288", "Gym288"),
    "diving48": ("Diving48", "Diving48"),
    "ntu60": ("NTU60", "NTU60"),
    "ek100_verb": ("EK100", "EK100"),
    "mini_ssv2": ("Mini-SSv2", "Mini-SSv2"),
    "ikeafa": ("IkeaFA", "IkeaFA"),
    "uav_human": ("UAV-Human", "UAV-Human"),
}

# Metric facts of the published columns (the reference CSVs carry numbers only).
PUBLISHED_METRICS = {
    "ucf101": ("top1", True, "%"),
    "hmdb51": ("top1", True, "%"),
    "ssv2": ("top1", True, "%"),
    "gym99": ("top1", True, "%"),
    "ucf101_1k": ("top1", True, "%"),
    "gym99_1k": ("top1", True, "%"),
    "fx_s1": ("mean_class_accuracy", True, "%"),
    "ub_s1": ("mean_class_accuracy", True, "%"),
    "ucfrep": ("counting_error", False, "fraction"),
    "charades": ("map", True, "%"),
}


@dataclass(frozen=True)
class Column:
    """One task column of a table."""

    task: str
    group: str  # "Existing", "Domains", ..., "Other"
    title: str
    latex_title: str
    higher_is_better: bool
    metric: str
    unit: str  # "%" or "fraction"
    in_severe: bool  # part of the SEVERE mean and rank

    @property
    def decimals(self) -> int:
        """Digits after the point, as in the thesis: 1 for percentages, 3 for a counting error."""
        return 1 if self.unit == "%" else 3

    @property
    def std_decimals(self) -> int:
        return 1 if self.unit == "%" else 2

    @property
    def arrow(self) -> str:
        return "" if self.higher_is_better else "↓"


def group_of(task: str) -> str:
    for group, tasks in SEVERE_GROUPS:
        if task in tasks:
            return group
    return "Existing" if task in EXISTING_TASKS else "Other"


def titles(task: str, name: str | None = None) -> tuple[str, str]:
    """(plain, latex) column title: the paper's short name, else the task id (registry names are long)."""
    if task in _TITLES:
        return _TITLES[task]
    plain = task
    from .latex import escape

    return plain, escape(plain)


def column_order(tasks: set[str]) -> list[str]:
    """Existing first, then the SEVERE eight in paper order, then other tasks alphabetically."""
    ordered = [t for t in EXISTING_TASKS if t in tasks]
    ordered += [t for t in SEVERE_TASKS if t in tasks]
    ordered += sorted(t for t in tasks if t not in EXISTING_TASKS and t not in SEVERE_TASKS)
    return ordered


def mean_contribution(value: float, column: Column) -> float:
    """A task's entry in the SEVERE mean: percentages as they are, an error fraction as (1 − err) × 100."""
    if column.unit == "%" and column.higher_is_better:
        return value
    if column.metric == "counting_error":
        return (1.0 - value) * 100.0
    from ..errors import SevereError

    raise SevereError(
        f"column {column.task!r} reports {column.metric!r} ({column.unit}); the SEVERE mean needs a percentage "
        "where higher is better, or a counting error"
    )
