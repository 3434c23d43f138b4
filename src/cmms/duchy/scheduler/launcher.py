"""What the scheduler needs from whatever runs mill jobs (child processes, Kubernetes Jobs...)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cmms.duchy.scheduler.claims import MillClaim
from cmms.duchy.scheduler.mill_types import MillType


@dataclass(frozen=True)
class HistoryLimits:
    """How many finished jobs of each mill type to keep for inspection (newest first)."""

    successful: int = 3
    failed: int = 1

    def __post_init__(self) -> None:
        if self.successful < 0 or self.failed < 0:
            raise ValueError("history limits cannot be negative")


class JobLauncher(Protocol):
    async def launch(self, mill_type: MillType, claim: MillClaim) -> None:
        """Start one mill job named `claim.mill_id` working on `claim`."""
        ...

    async def active_jobs(self, mill_type: MillType) -> Sequence[str]:
        """Names of this launcher's jobs of `mill_type` that have not finished."""
        ...

    async def clean_up(self, mill_type: MillType) -> Sequence[str]:
        """Forget (delete) finished jobs beyond the history limits; returns their names."""
        ...

    async def close(self) -> None:
        """Release what the launcher holds.

        Child processes are stopped (their claims are retaken when the locks expire); Kubernetes
        Jobs belong to the cluster and keep running.
        """
        ...
