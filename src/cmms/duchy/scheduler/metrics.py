"""Prometheus metrics of the mill job scheduler."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

JOBS_LAUNCHED = Counter(
    "cmms_mill_scheduler_jobs_launched",
    "Mill jobs launched, by mill type and protocol.",
    ["mill_type", "protocol"],
)
ACTIVE_JOBS = Gauge(
    "cmms_mill_scheduler_active_jobs",
    "Unfinished mill jobs seen at the last cycle, by mill type.",
    ["mill_type"],
)
JOBS_CLEANED = Counter(
    "cmms_mill_scheduler_jobs_cleaned_up",
    "Finished mill jobs deleted beyond the history limits, by mill type.",
    ["mill_type"],
)
CYCLE_ERRORS = Counter(
    "cmms_mill_scheduler_cycle_errors",
    "Scheduling cycles that failed (claiming, launching or cleaning up).",
)
