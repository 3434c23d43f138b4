"""The mill job scheduler loop: claim work per mill type and launch a job carrying each claim.

Every cycle, for each mill type and each protocol it serves: skip if the type already has its
maximum of unfinished jobs; otherwise claim the protocol's oldest claimable computation (new
computations first: the protocol's initial stage is prioritized) under a fresh job name, and
launch that job. Then clean up the type's finished jobs, and wait for the polling delay, or,
with a `WorkWatcher`, until the internal API says work may have become claimable (at most the
polling delay: lock expiries and delayed enqueues are only noticed by polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from cmms.common.logging import get_logger
from cmms.duchy.scheduler import metrics
from cmms.duchy.scheduler.claims import MillClaim, WorkClaimer, WorkWatcher
from cmms.duchy.scheduler.launcher import JobLauncher
from cmms.duchy.scheduler.mill_types import MillType, job_name
from cmms.protocols.stages import ProtocolType, stage_graph

_log = get_logger(__name__)


@dataclass(frozen=True)
class MillTypeLimits:
    """How many jobs of a mill type may run at once, and how long each job's claim lasts."""

    mill_type: MillType
    maximum_concurrency: int = 1
    work_lock_duration: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if self.maximum_concurrency < 0:
            raise ValueError("maximum concurrency cannot be negative")
        if self.work_lock_duration <= timedelta(0):
            raise ValueError("the work lock duration must be positive")


class MillScheduler:
    def __init__(
        self,
        duchy_name: str,
        claimer: WorkClaimer,
        launcher: JobLauncher,
        mill_types: Sequence[MillTypeLimits],
        polling_delay: timedelta = timedelta(seconds=2),
        rng: random.Random | None = None,
        watcher: WorkWatcher | None = None,
    ) -> None:
        # A maximum concurrency of 0 turns a mill type off.
        self._types = [limits for limits in mill_types if limits.maximum_concurrency > 0]
        self._duchy = duchy_name
        self._claimer = claimer
        self._launcher = launcher
        self._delay = polling_delay
        self._watcher = watcher
        self._rng = rng or random.SystemRandom()
        self._log = _log.bind(duchy=duchy_name)

    @property
    def mill_types(self) -> list[MillType]:
        return [limits.mill_type for limits in self._types]

    async def run_cycle(self) -> list[MillClaim]:
        """One pass over every mill type; returns the claims launched."""
        launched: list[MillClaim] = []
        for limits in self._types:
            for protocol in limits.mill_type.protocols:
                claim = await self._claim_and_launch(limits, protocol)
                if claim is not None:
                    launched.append(claim)
            cleaned = await self._launcher.clean_up(limits.mill_type)
            metrics.JOBS_CLEANED.labels(limits.mill_type.value).inc(len(cleaned))
        return launched

    async def run(self, stop: asyncio.Event) -> None:
        """Cycle until `stop` is set; a failed cycle is logged and retried after the delay.

        Errors do not end the loop: the internal API or the Kubernetes API being briefly away is
        normal, and a computation claimed by a job that never started is retaken when its lock
        expires.
        """
        self._log.info("mill scheduler started", mill_types=[t.value for t in self.mill_types])
        # The change the last cycle has seen: a change after it wakes the next wait at once.
        seen = ""
        while not stop.is_set():
            try:
                await self.run_cycle()
            except Exception:
                metrics.CYCLE_ERRORS.inc()
                self._log.exception("mill scheduling cycle failed")
            seen = await self._wait(stop, seen)
        self._log.info("mill scheduler stopped")

    async def _wait(self, stop: asyncio.Event, seen: str) -> str:
        """Wait for the next cycle's moment; SIGTERM (`stop`) ends any wait at once."""
        stopped = asyncio.ensure_future(stop.wait())
        waiting = asyncio.ensure_future(
            self._watcher.await_work(seen, self._delay)
            if self._watcher is not None
            else asyncio.sleep(self._delay.total_seconds(), seen)
        )
        try:
            await asyncio.wait({stopped, waiting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stopped, waiting):
                task.cancel()
            await asyncio.gather(stopped, waiting, return_exceptions=True)
        if waiting.cancelled():
            return seen
        error = waiting.exception()
        if error is None:
            return waiting.result()
        # The internal API is away: wait as a poll would, then try again.
        self._log.warning("waiting for work failed", error=repr(error))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=self._delay.total_seconds())
        return ""

    async def _claim_and_launch(
        self, limits: MillTypeLimits, protocol: ProtocolType
    ) -> MillClaim | None:
        mill_type = limits.mill_type
        # Counted again for each protocol: LLv2 and reach-only LLv2 share one limit.
        active = await self._launcher.active_jobs(mill_type)
        metrics.ACTIVE_JOBS.labels(mill_type.value).set(len(active))
        if len(active) >= limits.maximum_concurrency:
            self._log.debug("mill type at maximum concurrency", mill_type=mill_type.value)
            return None
        owner = job_name(self._duchy, mill_type, self._rng)
        work = await self._claimer.claim_work(
            protocol,
            owner,
            limits.work_lock_duration,
            prioritized_stages=stage_graph(protocol).initial_stages,
        )
        if work is None:
            return None
        claim = MillClaim(owner, protocol, work.global_computation_id, work.version)
        await self._launcher.launch(mill_type, claim)
        metrics.JOBS_LAUNCHED.labels(mill_type.value, protocol.name).inc()
        self._log.info(
            "mill job launched",
            job=owner,
            protocol=protocol.name,
            computation=work.global_computation_id,
            version=work.version,
        )
        return claim
