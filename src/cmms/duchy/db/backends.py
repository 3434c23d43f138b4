"""Choosing the duchy's database backend by URL.

`sqlite:///...` and `postgresql://...` use the SQLAlchemy repositories; `spanner://projects/P/
instances/I/databases/D` uses the Spanner ones (the `gcp` extra). Either way the caller gets the
three repositories behind the Protocols of `cmms.duchy.db.interfaces`::

    database = open_duchy_database(url)
    await upgrade_duchy_database(url)        # or `cmms duchy db migrate` before start
    token = await database.computations.claim_work(protocol, owner="mill-7")
    await database.close()
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cmms.common.spanner.url import SpannerUrl, is_spanner_url
from cmms.duchy.db.clock import Clock, system_clock
from cmms.duchy.db.computations import (
    DEFAULT_LOCK_DURATION,
    ComputationsRepository,
    random_local_id,
)
from cmms.duchy.db.continuation_tokens import ContinuationTokensRepository
from cmms.duchy.db.engine import create_database_engine
from cmms.duchy.db.interfaces import (
    ComputationsRepositoryInterface,
    ComputationStatsRepositoryInterface,
    ContinuationTokensRepositoryInterface,
)
from cmms.duchy.db.migrate import upgrade_engine
from cmms.duchy.db.stats import ComputationStatsRepository


@dataclass
class DuchyDatabase:
    """The repositories over one connection (engine or Spanner client); `close` releases it."""

    computations: ComputationsRepositoryInterface
    stats: ComputationStatsRepositoryInterface
    continuation_tokens: ContinuationTokensRepositoryInterface
    _close: Callable[[], Awaitable[None]]

    async def close(self) -> None:
        await self._close()


def open_duchy_database(
    url: str,
    *,
    clock: Clock = system_clock,
    id_generator: Callable[[], int] = random_local_id,
    default_lock_duration: timedelta = DEFAULT_LOCK_DURATION,
    **engine_options: Any,
) -> DuchyDatabase:
    """The repositories for the database at `url`; `engine_options` tune SQLAlchemy engines."""
    if is_spanner_url(url):
        if engine_options:
            raise TypeError(f"engine options {sorted(engine_options)} apply to SQL URLs only")
        return _open_spanner(url, clock, id_generator, default_lock_duration)
    engine = create_database_engine(url, **engine_options)
    return DuchyDatabase(
        computations=ComputationsRepository(
            engine,
            clock=clock,
            id_generator=id_generator,
            default_lock_duration=default_lock_duration,
        ),
        stats=ComputationStatsRepository(engine, clock=clock),
        continuation_tokens=ContinuationTokensRepository(engine, clock=clock),
        _close=engine.dispose,
    )


async def upgrade_duchy_database(url: str, revision: str = "head") -> None:
    """Create or upgrade the schema at `url` (Spanner: also the database, if absent)."""
    if is_spanner_url(url):
        from cmms.duchy.db.spanner.migrate import upgrade_spanner_async

        await upgrade_spanner_async(url, revision)
        return
    engine = create_database_engine(url)
    try:
        await upgrade_engine(engine, revision)
    finally:
        await engine.dispose()


def _open_spanner(
    url: str, clock: Clock, id_generator: Callable[[], int], default_lock_duration: timedelta
) -> DuchyDatabase:
    # Imported here: the SDK is an optional extra, needed only for spanner:// URLs.
    from cmms.common.spanner.connection import open_spanner
    from cmms.duchy.db.spanner import (
        SpannerComputationsRepository,
        SpannerComputationStatsRepository,
        SpannerContinuationTokensRepository,
    )

    connection = open_spanner(SpannerUrl.parse(url))

    async def close() -> None:
        connection.close()

    return DuchyDatabase(
        computations=SpannerComputationsRepository(
            connection,
            clock=clock,
            id_generator=id_generator,
            default_lock_duration=default_lock_duration,
        ),
        stats=SpannerComputationStatsRepository(connection, clock=clock),
        continuation_tokens=SpannerContinuationTokensRepository(connection, clock=clock),
        _close=close,
    )
