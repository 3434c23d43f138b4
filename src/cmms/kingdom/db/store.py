"""The single writer: one Kingdom-wide lock, one transaction and one fresh timestamp per write.

Every write transaction takes the Kingdom-wide asyncio lock, opens a database transaction
(`BEGIN IMMEDIATE` on SQLite, a row lock on the clock row on PostgreSQL, so a second process
also queues) and draws its timestamp there: `max(now, previous + 1 µs)`, with `previous` stored
in the database. Timestamps are therefore strictly increasing in commit order, across restarts
too, which is what lets the duchies' stream resume strictly after a token without missing or
repeating anything. That timestamp is the update time (and etag source) of every row the
transaction changes.

After each commit the `ChangeFeed` wakes waiting streams, so they need not wait for their poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cmms.kingdom.db.changes import ChangeFeed
from cmms.kingdom.db.engine import SQLITE_BEGIN_OPTION
from cmms.kingdom.db.schema import kingdom_clock
from cmms.kingdom.ids import IdGenerator, random_external_id
from cmms.kingdom.timestamps import Clock, system_clock, to_micros

__all__ = ["ChangeFeed", "KingdomStore", "WriteTx"]


@dataclass(frozen=True)
class WriteTx:
    """An open write transaction: its connection, its timestamp (µs) and the id source."""

    connection: AsyncConnection
    now_us: int
    new_id: IdGenerator


class KingdomStore:
    """Owns the engine, the clock and the write lock; repositories open transactions through it."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = system_clock,
        new_id: IdGenerator = random_external_id,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._new_id = new_id
        self._lock = asyncio.Lock()
        self.changes = ChangeFeed()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    def now_us(self) -> int:
        """The wall clock in µs (for reads; writes use their transaction's timestamp)."""
        return to_micros(self._clock())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[WriteTx]:
        """A serialised write transaction; commits on normal exit, rolls back on an exception."""
        async with self._lock:
            async with self._engine.begin() as connection:
                now_us = await self._next_timestamp(connection)
                yield WriteTx(connection, now_us, self._new_id)
            self.changes.publish()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only connection (not serialised with writers; sees committed writes only)."""
        async with self._engine.connect() as connection:
            # A reader need not take SQLite's write lock.
            await connection.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
            yield connection

    async def _next_timestamp(self, connection: AsyncConnection) -> int:
        query = select(kingdom_clock.c.last_time_us).where(kingdom_clock.c.id == 1)
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        previous: int | None = (await connection.execute(query)).scalar_one_or_none()
        now_us = to_micros(self._clock())
        if previous is None:
            await connection.execute(kingdom_clock.insert().values(id=1, last_time_us=now_us))
            return now_us
        stamped = max(now_us, previous + 1)
        await connection.execute(
            update(kingdom_clock).where(kingdom_clock.c.id == 1).values(last_time_us=stamped)
        )
        return stamped
