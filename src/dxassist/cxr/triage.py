"""Triage priority from the calibrated abnormality score.

Thresholds come from the model's metadata (set on the validation split at training time
and stated in the model card): ``priority`` is the score that catches 95 % of abnormal
films on val, ``urgent`` the score that 95 % of normal films on val stay below.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Priority(StrEnum):
    URGENT = "urgent"
    PRIORITY = "priority"
    ROUTINE = "routine"


@dataclass(frozen=True)
class Thresholds:
    priority: float
    urgent: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.priority <= self.urgent <= 1.0:
            raise ValueError(
                f"triage thresholds must satisfy 0 <= priority ({self.priority}) <= "
                f"urgent ({self.urgent}) <= 1"
            )


def priority_for(abnormal: float, thresholds: Thresholds) -> Priority:
    """Map the abnormality score 1 - p(normal) to a worklist priority."""
    if abnormal >= thresholds.urgent:
        return Priority.URGENT
    if abnormal >= thresholds.priority:
        return Priority.PRIORITY
    return Priority.ROUTINE
