"""Which stream position is safe to resume from (duchy_internals §7.1, pitfall 20).

Streamed computations finish out of order, but a continuation token may be stored only once its
computation *and every earlier one* are done: resuming from it must never skip unfinished work.
So tokens are kept in arrival order, and each completion stores the last token of the leading
run of finished ones. Stores happen one at a time, in order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import grpc

from cmms.common.grpc import StatusError
from cmms.common.logging import get_logger
from cmms.duchy.herald.local import ContinuationTokenStore
from cmms.duchy.herald.retry import Pacer, retrying

_log = get_logger(__name__)


@dataclass(eq=False)
class Pending:
    """One streamed computation's place in the stream."""

    token: str
    processed: bool = False


class TokenCheckpoints:
    def __init__(self, store: ContinuationTokenStore, latest: str, pacer: Pacer) -> None:
        self._store = store
        self._pacer = pacer
        self._entries: deque[Pending] = deque()
        self._lock = asyncio.Lock()
        self.latest = latest

    def add_pending(self, token: str) -> Pending:
        entry = Pending(token)
        self._entries.append(entry)
        return entry

    @property
    def pending_count(self) -> int:
        return len(self._entries)

    async def mark_processed(self, entry: Pending) -> None:
        """Record `entry` as done and store the newest token with nothing unfinished before it.

        Raises when the store refuses for any reason but an older-token conflict, which only
        means another writer is ahead; retryable errors are retried first."""
        entry.processed = True
        async with self._lock:
            newest: str | None = None
            while self._entries and self._entries[0].processed:
                newest = self._entries.popleft().token
            if newest is None:
                return
            self.latest = newest
            try:
                await retrying(lambda: self._store.set(newest), self._pacer)
            except StatusError as error:
                if error.code != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
                _log.warning("stored continuation token is newer; keeping it", error=str(error))
