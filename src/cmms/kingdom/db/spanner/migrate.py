"""Creating and upgrading the Kingdom's Spanner schema (`cmms kingdom db migrate --database-url
spanner://...`). Versions are integers; re-running with nothing pending is a no-op."""

from __future__ import annotations

import asyncio

from cmms.common.spanner.admin import connected, target_version
from cmms.common.spanner.ddl_migrations import current_version, upgrade
from cmms.kingdom.db.spanner.schema import MIGRATIONS, VERSION_TABLE


def upgrade_spanner(url: str, revision: str = "head") -> int | None:
    """Create the database if absent and migrate it to `revision` ("head" or a version number)."""
    target = target_version(revision)
    with connected(url) as connection:
        return upgrade(connection, MIGRATIONS, VERSION_TABLE, target)


async def upgrade_spanner_async(url: str, revision: str = "head") -> int | None:
    return await asyncio.to_thread(upgrade_spanner, url, revision)


def current_spanner_revision(url: str) -> int | None:
    """The newest applied schema version, or None if none was ever applied."""
    with connected(url) as connection:
        return current_version(connection, VERSION_TABLE)
