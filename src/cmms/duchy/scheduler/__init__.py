"""The mill job scheduler: claims work in the duchy database and launches mill jobs carrying it.

Jobs run as child processes (`SubprocessLauncher`, the default) or as Kubernetes Jobs cloned from
PodTemplates (`KubernetesJobLauncher`, needs the `k8s` extra).
"""

from __future__ import annotations

from cmms.duchy.scheduler.claims import (
    ClaimedWork,
    GrpcWorkClaimer,
    GrpcWorkWatcher,
    MillClaim,
    WorkClaimer,
    WorkWatcher,
)
from cmms.duchy.scheduler.launcher import HistoryLimits, JobLauncher
from cmms.duchy.scheduler.mill_types import MillType, job_name
from cmms.duchy.scheduler.scheduler import MillScheduler, MillTypeLimits
from cmms.duchy.scheduler.subprocess_launcher import SubprocessLauncher, SubprocessSettings

__all__ = [
    "ClaimedWork",
    "GrpcWorkClaimer",
    "GrpcWorkWatcher",
    "HistoryLimits",
    "JobLauncher",
    "MillClaim",
    "MillScheduler",
    "MillType",
    "MillTypeLimits",
    "SubprocessLauncher",
    "SubprocessSettings",
    "WorkClaimer",
    "WorkWatcher",
    "job_name",
]
