"""Migrations: `upgrade head` and `downgrade base` on SQLite and PostgreSQL, and no schema drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from cmms.duchy.db import migrate
from cmms.duchy.db.engine import sync_url
from cmms.duchy.db.migrate import VERSION_TABLE
from cmms.duchy.db.schema import metadata
from cmms.testing.scratch_databases import (
    POSTGRES_SKIP_REASON,
    postgres_server_url,
    scratch_postgres_database,
    sqlite_url,
)

TABLES = {
    "computations",
    "computation_stages",
    "computation_stage_attempts",
    "computation_blob_references",
    "requisitions",
    "computation_stats",
    "herald_continuation_tokens",
}


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(postgres_server_url() is None, reason=POSTGRES_SKIP_REASON),
            ],
        ),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    server = postgres_server_url()
    assert server is not None
    with scratch_postgres_database(server, prefix="cmms_duchy_migrations") as url:
        yield url


def table_names(url: str) -> set[str]:
    engine = create_engine(sync_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {VERSION_TABLE}
    finally:
        engine.dispose()


def drift(url: str) -> list[object]:
    engine = create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "version_table": VERSION_TABLE}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_upgrade_head_then_downgrade_base(database_url: str) -> None:
    assert migrate.current_revision(database_url) is None
    migrate.upgrade(database_url)
    assert migrate.current_revision(database_url) == "0001"
    assert table_names(database_url) == TABLES
    migrate.upgrade(database_url)  # already at head: nothing to do
    migrate.downgrade(database_url)
    assert migrate.current_revision(database_url) is None
    assert table_names(database_url) == set()
    migrate.upgrade(database_url)
    assert table_names(database_url) == TABLES


def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    migrate.upgrade(database_url)
    assert drift(database_url) == []
