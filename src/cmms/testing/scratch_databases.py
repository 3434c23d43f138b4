"""Throwaway databases for tests: a fresh SQLite file, or a fresh PostgreSQL database.

PostgreSQL tests read the server URL from `CMMS_TEST_POSTGRES_URL` (CI sets it) and skip when it is
unset. Each scratch database has a unique name, so parallel runs on one server never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL_ENV = "CMMS_TEST_POSTGRES_URL"
POSTGRES_SKIP_REASON = f"{POSTGRES_URL_ENV} is not set: no PostgreSQL server to test against"


def postgres_server_url() -> str | None:
    return os.environ.get(POSTGRES_URL_ENV) or None


def sqlite_url(directory: Path, name: str = "duchy.db") -> str:
    return f"sqlite+aiosqlite:///{directory / name}"


@contextmanager
def scratch_postgres_database(server_url: str, prefix: str = "cmms_test") -> Iterator[str]:
    """Create a uniquely named database on the server, yield its URL, then drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(make_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
