"""Runs analysis tasks: in-process by default (Celery later, same task function)."""

from __future__ import annotations

from dxassist.jobs.tasks import analyse_study
from dxassist.jobs.worker import Worker

__all__ = ["Worker", "analyse_study"]
