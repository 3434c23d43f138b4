"""Creating and upgrading the duchy's Spanner schema (`cmms duchy db migrate --database-url
spanner://...`). Versions are integers; re-running with nothing pending is a no-op."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from cmms.common.spanner.connection import SpannerConnection, open_spanner
from cmms.common.spanner.ddl_migrations import SpannerMigrationError, current_version, upgrade
from cmms.common.spanner.url import SpannerUrl
from cmms.duchy.db.spanner.schema import MIGRATIONS, VERSION_TABLE


def upgrade_spanner(url: str, revision: str = "head") -> int | None:
    """Create the database if absent and migrate it to `revision` ("head" or a version number)."""
    target = _target(revision)
    with _connected(url) as connection:
        return upgrade(connection, MIGRATIONS, VERSION_TABLE, target)


async def upgrade_spanner_async(url: str, revision: str = "head") -> int | None:
    return await asyncio.to_thread(upgrade_spanner, url, revision)


def current_spanner_revision(url: str) -> int | None:
    """The newest applied schema version, or None if none was ever applied."""
    with _connected(url) as connection:
        return current_version(connection, VERSION_TABLE)


@contextmanager
def _connected(url: str) -> Iterator[SpannerConnection]:
    """A connection to `url`; SDK and credential failures become one-line `UserError`s."""
    from google.api_core.exceptions import GoogleAPICallError
    from google.auth.exceptions import GoogleAuthError

    parsed = SpannerUrl.parse(url)
    try:
        connection = open_spanner(parsed)
        try:
            yield connection
        finally:
            connection.close()
    except (GoogleAPICallError, GoogleAuthError) as error:
        raise SpannerMigrationError(f"Spanner database {parsed}: {error}") from error


def _target(revision: str) -> int | None:
    if revision == "head":
        return None
    try:
        return int(revision)
    except ValueError:
        raise SpannerMigrationError(
            f"Spanner schema revisions are numbers (or 'head'), not {revision!r}"
        ) from None
