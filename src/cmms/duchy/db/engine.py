"""Async engines for the supported database URLs, configured for the repository's transactions.

SQLite: every connection enforces foreign keys (needed for the cascades), uses WAL and waits for
locks instead of failing at once, and a write transaction starts with `BEGIN IMMEDIATE`. Taking the
write lock up front means two transactions never both read and then race to upgrade to a write lock,
which SQLite can only resolve by failing one of them.

PostgreSQL: the default READ COMMITTED isolation; the repository locks the computation row it
changes (`SELECT ... FOR UPDATE`) or changes it with a conditional `UPDATE ... WHERE version = ...`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cmms.common.errors import UserError

SQLITE_BUSY_TIMEOUT_SECONDS = 60.0

# The `BEGIN` a SQLite transaction starts with; reads may ask for a plain deferred BEGIN.
SQLITE_BEGIN_OPTION = "cmms_sqlite_begin"

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


class UnsupportedDatabaseUrlError(UserError):
    """The URL names a database this duchy cannot use."""


def async_url(url: str | URL) -> URL:
    """`url` with the async driver of its backend (`sqlite:///x` becomes `sqlite+aiosqlite:///x`)."""
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str | URL) -> URL:
    """`url` with a synchronous driver, for tools such as alembic's command line."""
    return _with_driver(url, _SYNC_DRIVERS)


def _with_driver(url: str | URL, drivers: dict[str, str]) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise UnsupportedDatabaseUrlError(
            f"unsupported database URL scheme {parsed.drivername!r}: use sqlite or postgresql"
        )
    return parsed.set(drivername=drivers[backend])


def create_database_engine(url: str | URL, **engine_options: Any) -> AsyncEngine:
    """An async engine for `url`, with the per-backend settings the repositories rely on."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        options: dict[str, Any] = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}}
        options.update(engine_options)
        engine = create_async_engine(target, **options)
        configure_sqlite(engine.sync_engine)
        return engine
    options = {"pool_pre_ping": True}
    options.update(engine_options)
    return create_async_engine(target, **options)


@asynccontextmanager
async def read_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only; on SQLite it does not take the write lock."""
    async with engine.connect() as connection:
        await connection.execution_options(**{SQLITE_BEGIN_OPTION: "DEFERRED"})
        yield connection


def configure_sqlite(sync_engine: Any) -> None:
    """Install the SQLite connection and transaction settings on a (sync view of an) engine."""

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us emit BEGIN ourselves: the driver's implicit BEGIN is always deferred.
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
