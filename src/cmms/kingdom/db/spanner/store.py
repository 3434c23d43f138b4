"""The single writer on Spanner: read-write transactions stamped by the Kingdom clock row.

Every write transaction first reads the clock row (`kingdom_clock`, id 1) and buffers its update
to `max(now, previous + 1 µs)`. All writers thus read and write one row, so Spanner never lets two
of them commit concurrently (one aborts and `run_in_transaction` retries it, reading the winner's
value): timestamps are strictly increasing in commit order, across processes and restarts, which
is what the duchies' stream needs to resume strictly after a token. An asyncio lock also queues
the writers of one process, so they wait instead of aborting each other.

Transaction functions are sync and run in a worker thread (the SDK is sync and thread-safe). Spanner
may run one several times, so it must only read and buffer mutations. Mutations are invisible to
the transaction's own reads, so writers that answer with the new state read it back afterwards, in
a snapshot at their commit timestamp: exactly the state their commit produced.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import grpc
from google.api_core.exceptions import DeadlineExceeded, RetryError, ServiceUnavailable
from google.cloud import spanner

from cmms.common.spanner.connection import SpannerConnection
from cmms.kingdom.db.changes import ChangeFeed
from cmms.kingdom.errors import KingdomError
from cmms.kingdom.ids import IdGenerator, random_external_id
from cmms.kingdom.timestamps import Clock, system_clock, to_micros

T = TypeVar("T")
R = TypeVar("R")

CLOCK_TABLE = "kingdom_clock"
_CLOCK_ROW_ID = 1
# Spanner (or the network to it) not answering: callers (mills, EDPs) retry on UNAVAILABLE.
_UNAVAILABLE = (ServiceUnavailable, DeadlineExceeded, RetryError)
_key_set: Any = spanner.KeySet


@dataclass(frozen=True)
class SpannerWriteTx:
    """An open read-write transaction, its timestamp (µs) and the id source."""

    transaction: Any
    now_us: int
    new_id: IdGenerator


class SpannerKingdomStore:
    """Owns the Spanner connection, the clock and the write lock; repositories run work through it."""

    def __init__(
        self,
        connection: SpannerConnection,
        *,
        clock: Clock = system_clock,
        new_id: IdGenerator = random_external_id,
    ) -> None:
        self._connection = connection
        self._database = connection.database
        self._clock = clock
        self._new_id = new_id
        self._lock = asyncio.Lock()
        self.changes = ChangeFeed()

    async def write(self, work: Callable[[SpannerWriteTx], T]) -> T:
        """Run `work` in a stamped read-write transaction; commits unless it raises."""
        result, _ = await self._write(work)
        return result

    async def write_then_read(
        self, work: Callable[[SpannerWriteTx], T], read_back: Callable[[Any, T], R]
    ) -> R:
        """`work` in a transaction, then `read_back(snapshot, result)` at its commit timestamp."""
        result, committed = await self._write(work)
        return await _in_thread(functools.partial(self._read_sync, read_back, result, committed))

    async def read(self, work: Callable[[Any], T]) -> T:
        """Run `work(snapshot)` in a strong read-only snapshot (sees committed writes only)."""
        return await _in_thread(functools.partial(self._read_sync, _apply, work, None))

    def close(self) -> None:
        self._connection.close()

    async def _write(self, work: Callable[[SpannerWriteTx], T]) -> tuple[T, datetime]:
        async with self._lock:
            outcome = await _in_thread(functools.partial(self._write_sync, work))
        self.changes.publish()
        return outcome

    def _write_sync(self, work: Callable[[SpannerWriteTx], T]) -> tuple[T, datetime]:
        attempts: list[Any] = []

        def attempt(transaction: Any) -> T:
            attempts.append(transaction)
            return work(SpannerWriteTx(transaction, self._stamp(transaction), self._new_id))

        result = self._database.run_in_transaction(attempt)
        # Only the last attempt committed; earlier ones were aborted and retried.
        committed: datetime = attempts[-1].committed
        return result, committed

    def _stamp(self, transaction: Any) -> int:
        rows = list(
            transaction.read(
                CLOCK_TABLE, columns=("last_time_us",), keyset=_key_set(keys=[[_CLOCK_ROW_ID]])
            )
        )
        now_us = to_micros(self._clock())
        stamped = now_us if not rows else max(now_us, int(rows[0][0]) + 1)
        transaction.insert_or_update(
            CLOCK_TABLE,
            columns=("id", "last_time_us", "commit_time"),
            values=[(_CLOCK_ROW_ID, stamped, spanner.COMMIT_TIMESTAMP)],
        )
        return stamped

    def _read_sync(self, work: Callable[[Any, T], R], argument: T, at: datetime | None) -> R:
        options = {} if at is None else {"read_timestamp": at}
        with self._database.snapshot(multi_use=True, **options) as snapshot:
            return work(snapshot, argument)


def _apply(snapshot: Any, work: Callable[[Any], T]) -> T:
    return work(snapshot)


async def _in_thread(call: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(call)
    except _UNAVAILABLE as error:
        raise KingdomError(
            grpc.StatusCode.UNAVAILABLE, f"the database did not answer: {error}"
        ) from error
