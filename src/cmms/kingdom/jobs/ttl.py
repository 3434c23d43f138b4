"""Cancel measurements still pending after their time to live (§1.14).

`expire_once` is one pass (testable with an injected clock); `run_periodically` repeats it inside
the server process until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from cmms.common.logging import get_logger
from cmms.kingdom.db.interfaces import MeasurementRepositoryInterface
from cmms.kingdom.timestamps import Clock, system_clock, to_micros

BATCH_SIZE = 1000


async def expire_once(
    measurements: MeasurementRepositoryInterface,
    ttl: timedelta,
    *,
    clock: Clock = system_clock,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
) -> list[int]:
    """Cancel every pending measurement created more than `ttl` ago; returns their ids."""
    cutoff = to_micros(clock() - ttl)
    cancelled: list[int] = []
    while True:
        batch = await measurements.cancel_expired(cutoff, batch_size=batch_size, dry_run=dry_run)
        cancelled += batch
        if dry_run or len(batch) < batch_size:
            return cancelled


async def run_periodically(
    measurements: MeasurementRepositoryInterface,
    ttl: timedelta,
    period_seconds: float,
    stop: asyncio.Event,
    *,
    clock: Clock = system_clock,
) -> None:
    """Run `expire_once` every `period_seconds` until `stop` is set."""
    logger = get_logger("cmms.kingdom.ttl")
    while not stop.is_set():
        try:
            cancelled = await expire_once(measurements, ttl, clock=clock)
            if cancelled:
                logger.info("measurements_expired", count=len(cancelled))
        except Exception:
            # A failed pass is retried next period; the server keeps serving meanwhile.
            logger.exception("ttl_pass_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period_seconds)
