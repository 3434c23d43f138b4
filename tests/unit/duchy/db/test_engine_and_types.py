"""URL handling, UTC timestamps and versions: the small rules the repositories rest on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from cmms.duchy.db.clock import epoch_micros, utc
from cmms.duchy.db.computations import next_version, random_local_id
from cmms.duchy.db.engine import (
    UnsupportedDatabaseUrlError,
    async_url,
    create_database_engine,
    sync_url,
)
from cmms.duchy.db.types import UtcTimestamp


def test_urls_get_the_drivers_of_their_backend() -> None:
    assert async_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert async_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert sync_url("sqlite+aiosqlite:///x.db").drivername == "sqlite"
    assert sync_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert async_url("postgresql://u@h:5/db").port == 5
    with pytest.raises(UnsupportedDatabaseUrlError):
        async_url("mysql://h/db")


def test_utc_refuses_naive_times_and_converts_others() -> None:
    with pytest.raises(ValueError):
        utc(datetime(2026, 1, 1))
    east = timezone(timedelta(hours=2))
    assert utc(datetime(2026, 1, 1, 2, tzinfo=east)) == datetime(2026, 1, 1, tzinfo=UTC)
    assert utc(datetime(2026, 1, 1, 2, tzinfo=east)).tzinfo is UTC


def test_versions_move_forward_even_if_the_clock_does_not() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert epoch_micros(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == 1_000_005
    assert next_version(0, now) == epoch_micros(now)
    assert next_version(epoch_micros(now), now) == epoch_micros(now) + 1
    later = epoch_micros(now) + 10
    assert next_version(later, now) == later + 1


def test_random_local_ids_are_positive_int64() -> None:
    ids = {random_local_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(0 < i < 2**63 for i in ids)


async def test_timestamps_round_trip_as_utc_on_sqlite(tmp_path: Path) -> None:
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UtcTimestamp)
    )
    engine = create_database_engine(f"sqlite:///{tmp_path / 't.db'}")
    east = timezone(timedelta(hours=5))
    moment = datetime(2026, 3, 4, 10, 0, 0, 123456, tzinfo=east)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(table.metadata.create_all)
            await connection.execute(insert(table).values(id=1, at=moment))
            await connection.execute(insert(table).values(id=2, at=moment + timedelta(hours=1)))
            stored = (await connection.execute(select(table.c.at).where(table.c.id == 1))).scalar()
            later = (
                (await connection.execute(select(table.c.id).where(table.c.at > moment)))
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()
    assert stored == moment
    assert stored is not None and stored.tzinfo is UTC
    assert later == [2]


async def test_sqlite_connections_enforce_foreign_keys(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    try:
        async with engine.connect() as connection:
            enabled = (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    finally:
        await engine.dispose()
    assert enabled == 1
