"""Running the sync Spanner SDK behind async methods: read-write transactions and snapshots.

Each call runs in a worker thread (`asyncio.to_thread`); the SDK's database object and its session
pool are thread-safe. `run_in_transaction` retries the whole function when Spanner aborts the
transaction (a conflicting transaction won a lock), so transaction functions must only read and
buffer mutations, never have other side effects. Mutations are not visible to reads in the same
transaction, which is why writers read their result afterwards, in a snapshot at their commit
timestamp: exactly the state their commit produced, whatever committed later.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from google.api_core.exceptions import DeadlineExceeded, RetryError, ServiceUnavailable

from cmms.common.spanner.connection import SpannerConnection
from cmms.duchy.db.errors import DatabaseUnavailableError

T = TypeVar("T")

# Spanner (or the network to it) failing to answer: the caller may retry the whole operation.
_UNAVAILABLE = (ServiceUnavailable, DeadlineExceeded, RetryError)


class SpannerRunner:
    def __init__(self, connection: SpannerConnection) -> None:
        self._database = connection.database

    async def write(self, work: Callable[[Any], T]) -> tuple[T, datetime]:
        """Run `work(transaction)` in a read-write transaction; its result and commit timestamp."""
        return await _in_thread(functools.partial(self._write_sync, work))

    async def read(self, work: Callable[[Any], T], at: datetime | None = None) -> T:
        """Run `work(snapshot)` in a strong read-only snapshot, or one at timestamp `at`."""
        return await _in_thread(functools.partial(self._read_sync, work, at))

    async def write_then_read(
        self, work: Callable[[Any], T], read_back: Callable[[Any, T], Any]
    ) -> Any:
        """`work` in a transaction, then `read_back(snapshot, result)` at its commit timestamp."""

        def both() -> Any:
            result, committed = self._write_sync(work)
            return self._read_sync(lambda snapshot: read_back(snapshot, result), committed)

        return await _in_thread(both)

    def _write_sync(self, work: Callable[[Any], T]) -> tuple[T, datetime]:
        transactions: list[Any] = []

        def attempt(transaction: Any) -> T:
            transactions.append(transaction)
            return work(transaction)

        result = self._database.run_in_transaction(attempt)
        # Only the last attempt committed; the earlier ones were aborted and retried.
        committed: datetime = transactions[-1].committed
        return result, committed

    def _read_sync(self, work: Callable[[Any], T], at: datetime | None) -> T:
        options = {} if at is None else {"read_timestamp": at}
        with self._database.snapshot(multi_use=True, **options) as snapshot:
            return work(snapshot)


async def _in_thread(call: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(call)
    except _UNAVAILABLE as error:
        raise DatabaseUnavailableError(f"Spanner did not answer: {error}") from error
