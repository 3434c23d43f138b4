from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cmms.common.pki import PkiLayout
from cmms.testing.kingdom import KingdomWorld
from cmms.testing.pki import dev_pki
from cmms.testing.scratch_databases import (
    POSTGRES_SKIP_REASON,
    postgres_server_url,
    scratch_postgres_database,
)
from cmms.testing.spanner_emulator import SpannerEmulator, spanner_emulator

__all__ = ["dev_pki", "spanner_emulator"]


@pytest.fixture(params=["sqlite", "postgresql"])
def kingdom_sql_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty SQL database: SQLite always, PostgreSQL when CMMS_TEST_POSTGRES_URL is set."""
    yield from _database_url(request, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql", "spanner"])
def kingdom_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database on every backend: SQLite always, PostgreSQL when
    CMMS_TEST_POSTGRES_URL is set, Spanner when its emulator is installed (none exists yet; the
    Kingdom creates it when it migrates)."""
    if request.param == "spanner":
        emulator: SpannerEmulator = request.getfixturevalue("spanner_emulator")
        yield emulator.new_database_url("kingdom")
        return
    yield from _database_url(request, tmp_path)


def _database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'kingdom.db'}"
        return
    server = postgres_server_url()
    if server is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    with scratch_postgres_database(server, prefix="cmms_kingdom_test") as url:
        yield url


@pytest.fixture
async def world(kingdom_database_url: str, dev_pki: PkiLayout) -> AsyncIterator[KingdomWorld]:
    opened = await KingdomWorld.open(kingdom_database_url, dev_pki)
    try:
        yield opened
    finally:
        await opened.close()
