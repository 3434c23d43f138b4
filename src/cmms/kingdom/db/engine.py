"""Async engines for `sqlite` (default, via aiosqlite) and `postgresql` (via psycopg 3) URLs.

SQLite: foreign keys on, WAL, a busy timeout, and write transactions open with `BEGIN IMMEDIATE`
so a second process waits for the write lock instead of failing on upgrade.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cmms.common.errors import UserError

SQLITE_BUSY_TIMEOUT_SECONDS = 60.0
# Execution option naming the BEGIN mode of a SQLite transaction; reads ask for DEFERRED.
SQLITE_BEGIN_OPTION = "kingdom_sqlite_begin"
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _with_driver(url: str | URL, drivers: dict[str, str]) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise UserError(f"unsupported database URL {parsed.drivername!r}: use sqlite or postgresql")
    return parsed.set(drivername=drivers[backend])


def async_url(url: str | URL) -> URL:
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str | URL) -> URL:
    return _with_driver(url, _SYNC_DRIVERS)


def create_kingdom_engine(url: str | URL, **options: Any) -> AsyncEngine:
    """An async engine for `url` with the per-backend settings the store relies on."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        engine = create_async_engine(
            target, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}, **options
        )
        configure_sqlite(engine.sync_engine)
        return engine
    return create_async_engine(target, **options)


def configure_sqlite(sync_engine: Any) -> None:
    """Connection pragmas and `BEGIN IMMEDIATE` on a (sync view of a) SQLite engine."""

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves: the driver's implicit one is always deferred.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
            cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")
