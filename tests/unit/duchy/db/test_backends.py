"""`open_duchy_database`: the URL scheme picks the repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmms.common.spanner.connection import (
    EMULATOR_HOST_ENV,
    MULTIPLEXED_READ_ONLY_ENV,
    MULTIPLEXED_READ_WRITE_ENV,
)
from cmms.duchy.db import (
    ComputationsRepository,
    ComputationStatsRepository,
    ContinuationTokensRepository,
    open_duchy_database,
)
from cmms.duchy.db.spanner import (
    SpannerComputationsRepository,
    SpannerComputationStatsRepository,
    SpannerContinuationTokensRepository,
)
from cmms.testing.scratch_databases import sqlite_url

SPANNER_URL = "spanner://projects/p-1/instances/inst/databases/duchy"


@pytest.fixture
def emulator_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """An emulator address with nothing behind it: opening makes a client but sends nothing."""
    monkeypatch.setenv(EMULATOR_HOST_ENV, "127.0.0.1:1")
    # Set here so that the settings opening makes for the emulator are undone after the test.
    monkeypatch.setenv(MULTIPLEXED_READ_WRITE_ENV, "false")
    monkeypatch.setenv(MULTIPLEXED_READ_ONLY_ENV, "false")


async def test_sql_urls_get_the_sqlalchemy_repositories(tmp_path: Path) -> None:
    database = open_duchy_database(sqlite_url(tmp_path), pool_size=2)
    try:
        assert isinstance(database.computations, ComputationsRepository)
        assert isinstance(database.stats, ComputationStatsRepository)
        assert isinstance(database.continuation_tokens, ContinuationTokensRepository)
    finally:
        await database.close()


@pytest.mark.usefixtures("emulator_address")
async def test_spanner_urls_get_the_spanner_repositories() -> None:
    database = open_duchy_database(SPANNER_URL)
    try:
        assert isinstance(database.computations, SpannerComputationsRepository)
        assert isinstance(database.stats, SpannerComputationStatsRepository)
        assert isinstance(database.continuation_tokens, SpannerContinuationTokensRepository)
    finally:
        await database.close()


@pytest.mark.usefixtures("emulator_address")
def test_sql_engine_options_are_refused_for_spanner() -> None:
    with pytest.raises(TypeError, match="pool_size"):
        open_duchy_database(SPANNER_URL, pool_size=5)
