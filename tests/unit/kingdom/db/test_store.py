"""The SQL single writer's timestamps and the SQL migrations (the Spanner store has its own
tests, in `spanner/`: it is built differently, over the same rules)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect

from cmms.kingdom.db.engine import create_kingdom_engine
from cmms.kingdom.db.migrate import current_revision, upgrade, upgrade_engine
from cmms.kingdom.db.schema import metadata
from cmms.kingdom.db.store import KingdomStore
from cmms.kingdom.timestamps import to_micros
from cmms.testing.manual_clock import ManualClock


async def test_write_timestamps_strictly_increase_even_when_the_clock_does_not(
    kingdom_sql_database_url: str,
) -> None:
    engine = create_kingdom_engine(kingdom_sql_database_url)
    await upgrade_engine(engine)
    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    store = KingdomStore(engine, clock=clock)

    async def stamp() -> int:
        async with store.write() as tx:
            return tx.now_us

    try:
        frozen = [await stamp() for _ in range(3)]
        assert frozen == [to_micros(clock()) + i for i in range(3)]
        concurrent = await asyncio.gather(*(stamp() for _ in range(10)))
        assert sorted(concurrent) == list(range(frozen[-1] + 1, frozen[-1] + 11))
        clock.advance(timedelta(seconds=1))
        assert await stamp() == to_micros(clock())
        # A new store (a restarted Kingdom) with a clock that went back keeps going forward.
        behind = KingdomStore(engine, clock=ManualClock(datetime(2029, 1, 1, tzinfo=UTC)))
        async with behind.write() as tx:
            assert tx.now_us == to_micros(clock()) + 1
    finally:
        await engine.dispose()


async def test_a_failed_write_rolls_back_and_does_not_notify(kingdom_sql_database_url: str) -> None:
    engine = create_kingdom_engine(kingdom_sql_database_url)
    await upgrade_engine(engine)
    store = KingdomStore(engine)
    try:
        before = store.changes.version
        try:
            async with store.write():
                raise RuntimeError("refused")
        except RuntimeError:
            pass
        assert store.changes.version == before
    finally:
        await engine.dispose()


def test_migrations_create_the_schema(tmp_path: object) -> None:
    url = f"sqlite:///{tmp_path}/migrated.db"
    upgrade(url)
    assert current_revision(url) == "0001"
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert set(metadata.tables) <= tables
