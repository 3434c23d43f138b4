"""The duchy computations repository conformance suite, on SQLite, PostgreSQL and Spanner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cmms.testing.conformance.computations_repository import ComputationsRepositoryConformance
from cmms.testing.scratch_databases import (
    POSTGRES_SKIP_REASON,
    postgres_server_url,
    scratch_postgres_database,
    sqlite_url,
)

# Importing the session fixture registers it for this module.
from cmms.testing.spanner_emulator import SpannerEmulator, spanner_emulator  # noqa: F401


class TestSqlite(ComputationsRepositoryConformance):
    @pytest.fixture
    def database_url(self, tmp_path: Path) -> str:
        return sqlite_url(tmp_path)


@pytest.mark.postgres
@pytest.mark.skipif(postgres_server_url() is None, reason=POSTGRES_SKIP_REASON)
class TestPostgres(ComputationsRepositoryConformance):
    @pytest.fixture
    def database_url(self) -> Iterator[str]:
        server = postgres_server_url()
        assert server is not None
        with scratch_postgres_database(server, prefix="cmms_duchy_repo") as url:
            yield url


class TestSpanner(ComputationsRepositoryConformance):
    """On the Spanner emulator, which serialises read-write transactions: the concurrency tests
    still must pass, but they prove less there than on Cloud Spanner or PostgreSQL."""

    @pytest.fixture
    def database_url(self, request: pytest.FixtureRequest) -> str:
        emulator: SpannerEmulator = request.getfixturevalue("spanner_emulator")
        return emulator.new_database_url("duchy")
