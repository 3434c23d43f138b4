"""Alembic environment: runs on a connection handed over by `cmms.kingdom.db.migrate`, or a URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from cmms.kingdom.db.engine import configure_sqlite, sync_url
from cmms.kingdom.db.migrate import VERSION_TABLE
from cmms.kingdom.db.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    handed_over = context.config.attributes.get("connection")
    if handed_over is not None:
        _run(handed_over)
        return
    url = sync_url(context.config.get_main_option("sqlalchemy.url") or "")
    engine = create_engine(url)
    if url.get_backend_name() == "sqlite":
        configure_sqlite(engine)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; give a database URL")
_run_online()
