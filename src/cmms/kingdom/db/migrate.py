"""Kingdom schema migrations: alembic (configured in code: no alembic.ini) for SQL databases,
numbered DDL batches (`cmms.kingdom.db.spanner.migrate`) for `spanner://` URLs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from cmms.common.spanner.url import is_spanner_url
from cmms.kingdom.db.engine import configure_sqlite, sync_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Its own name, so a database shared with another component keeps the histories apart.
VERSION_TABLE = "kingdom_alembic_version"


def alembic_config(connection: Connection | None = None, url: str | URL | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        rendered = url if isinstance(url, str) else url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision` (Spanner: a version number or "head";
    the database is created if absent)."""
    if is_spanner_url(url):
        # Imported here: the Spanner SDK is an optional extra.
        from cmms.kingdom.db.spanner.migrate import upgrade_spanner

        upgrade_spanner(str(url), revision)
        return
    _with_sync_connection(url, lambda c: command.upgrade(alembic_config(c), revision))


def downgrade(url: str | URL, revision: str = "base") -> None:
    _with_sync_connection(url, lambda c: command.downgrade(alembic_config(c), revision))


def current_revision(url: str | URL) -> str | None:
    """The revision the database at `url` is at, or None if it was never migrated."""
    if is_spanner_url(url):
        from cmms.kingdom.db.spanner.migrate import current_spanner_revision

        version = current_spanner_revision(str(url))
        return None if version is None else str(version)
    found: list[str | None] = []

    def read(connection: Connection) -> None:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        found.append(context.get_current_revision())

    _with_sync_connection(url, read)
    return found[0]


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate through an existing async engine (tests, in-process deployments)."""
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: command.upgrade(alembic_config(c), revision))


def _with_sync_connection(url: str | URL, action: Callable[[Connection], object]) -> None:
    target = sync_url(url)
    engine = create_engine(target)
    if target.get_backend_name() == "sqlite":
        configure_sqlite(engine)
    try:
        with engine.begin() as connection:
            action(connection)
    finally:
        engine.dispose()
