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

__all__ = ["dev_pki"]


@pytest.fixture(params=["sqlite", "postgresql"])
def kingdom_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: SQLite always, PostgreSQL when CMMS_TEST_POSTGRES_URL is set."""
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
