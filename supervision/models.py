"""Daily rollups of the supervisors' figures for closed days (before today, local time).

Why rollups: the 30-day figures read every ticket decided in the window (30k rows at a busy
desk's 1,000 a day), which costs more than the page's 50 ms budget however well indexed. A closed
day barely changes, so a periodic task (`supervision_rollup`) stores its figures once and
refreshes the last few days (a codes e-mail can be accepted after midnight); the page reads these
rows and computes only today live. A day without a row is computed live, so the figures are
right even before the task first runs (`make run` has no beat).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DayFigures(models.Model):
    """One closed local day: flow and the promise."""

    day = models.DateField(unique=True)
    received = models.PositiveIntegerField(default=0)
    decided = models.PositiveIntegerField(default=0)
    # Confirmed that day; of those, with a codes e-mail accepted; within the promise.
    confirmed = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    within = models.PositiveIntegerField(default=0)
    median_delay = models.FloatField(null=True, blank=True)
    p95_delay = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"figures {self.day}"


class AgentDayFigures(models.Model):
    """One agent's decisions on one closed local day."""

    day = models.DateField()
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    confirmed = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    median_handling = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            # Also the index of the page's range read (day >= window start).
            models.UniqueConstraint(fields=["day", "agent"], name="agent_day_figures_unique"),
        ]

    def __str__(self) -> str:
        return f"agent {self.agent_id} {self.day}"
