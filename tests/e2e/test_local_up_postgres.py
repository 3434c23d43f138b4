"""`cmms local up --database postgresql://...`: every party in its own PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cmms.deploy.local.configs import DUCHIES
from cmms.deploy.local.routing import LocalProtocol
from cmms.testing.local_up_cli import assert_exact, local_up, measure
from cmms.testing.scratch_databases import POSTGRES_SKIP_REASON, postgres_server_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

POPULATION = 800


@pytest.fixture
def base_url() -> Iterator[str]:
    """A server URL whose database name is a fresh prefix; its databases are dropped after."""
    server = postgres_server_url()
    if server is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    base = f"cmms_local_{uuid.uuid4().hex[:12]}"
    yield make_url(server).set(database=base).render_as_string(hide_password=False)
    admin = create_engine(make_url(server), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            for party in ("kingdom", *DUCHIES):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{base}_{party}" WITH (FORCE)'))
    finally:
        admin.dispose()


def test_hmss_through_a_system_on_postgres(tmp_path: Path, base_url: str) -> None:
    workdir = tmp_path / "local"
    with local_up(workdir, "--database", base_url, population=POPULATION) as system:
        document = measure(system, LocalProtocol.HMSS)
    assert not (workdir / "db").exists()  # no SQLite files: everything went to PostgreSQL
    assert_exact(document, POPULATION)
