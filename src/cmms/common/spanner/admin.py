"""Helpers for components' schema commands on Spanner: a connection whose failures read as one
line, and schema revisions given on the command line ("head" or a version number)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cmms.common.spanner.connection import SpannerConnection, open_spanner
from cmms.common.spanner.ddl_migrations import SpannerMigrationError
from cmms.common.spanner.url import SpannerUrl


@contextmanager
def connected(url: str) -> Iterator[SpannerConnection]:
    """A connection to `url`, closed on exit; SDK and credential failures become `UserError`s."""
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


def target_version(revision: str) -> int | None:
    """None for "head" (the newest version), else the version number."""
    if revision == "head":
        return None
    try:
        return int(revision)
    except ValueError:
        raise SpannerMigrationError(
            f"Spanner schema revisions are numbers (or 'head'), not {revision!r}"
        ) from None
