"""Periodic task: the supervisors' daily rollups."""

from __future__ import annotations

from celery import shared_task

from supervision.services import figures_rollup


@shared_task(ignore_result=True)
def supervision_rollup() -> int:
    """Roll up closed days (missing ones and the last few); safe to run twice."""
    return len(figures_rollup())
