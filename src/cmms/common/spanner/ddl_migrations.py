"""Versioned Spanner schemas: numbered batches of DDL, each applied once with `update_ddl`.

Applied versions are recorded in a bookkeeping table (its name is per component, so a Kingdom and
a duchy could share one database). Every statement of a batch must be idempotent on its own
(`CREATE TABLE IF NOT EXISTS`, `CREATE INDEX IF NOT EXISTS`, ...): a process that dies between the
DDL and the bookkeeping row then simply re-applies the batch on the next run, harmlessly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cmms.common.errors import UserError
from cmms.common.spanner.connection import SpannerConnection, ensure_database

_DDL_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class DdlMigration:
    version: int
    description: str
    statements: tuple[str, ...]


class SpannerMigrationError(UserError):
    """The schema could not be brought to the requested version."""


def applied_versions(connection: SpannerConnection, version_table: str) -> list[int]:
    """The versions recorded in `version_table`, ascending; [] if it (or the database) is absent."""
    if not connection.database.exists() or not _table_exists(connection, version_table):
        return []
    with connection.database.snapshot() as snapshot:
        rows = snapshot.execute_sql(f"SELECT Version FROM {version_table} ORDER BY Version")
        return [int(row[0]) for row in rows]


def current_version(connection: SpannerConnection, version_table: str) -> int | None:
    versions = applied_versions(connection, version_table)
    return versions[-1] if versions else None


def upgrade(
    connection: SpannerConnection,
    migrations: Sequence[DdlMigration],
    version_table: str,
    target: int | None = None,
) -> int | None:
    """Create the database if needed and apply the pending migrations up to `target` (all if None).

    Returns the version reached. Re-running with nothing pending changes nothing.
    """
    from google.api_core.exceptions import GoogleAPICallError

    _check_sequence(migrations)
    wanted = migrations[-1].version if target is None else target
    if wanted not in {m.version for m in migrations}:
        raise SpannerMigrationError(f"unknown schema version {target}")
    try:
        ensure_database(connection)
        if not _table_exists(connection, version_table):
            _apply_ddl(connection, [_version_table_ddl(version_table)])
        done = set(applied_versions(connection, version_table))
        newer = [m.version for m in migrations if m.version in done and m.version > wanted]
        if newer:
            raise SpannerMigrationError(
                f"the database is at version {max(done)}, newer than {wanted}: "
                "Spanner schemas are never migrated down"
            )
        for migration in migrations:
            if migration.version > wanted or migration.version in done:
                continue
            _apply_ddl(connection, migration.statements)
            _record(connection, version_table, migration)
    except GoogleAPICallError as error:
        raise SpannerMigrationError(f"Spanner schema migration failed: {error}") from error
    return current_version(connection, version_table)


def _check_sequence(migrations: Sequence[DdlMigration]) -> None:
    versions = [m.version for m in migrations]
    if not versions or versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1, 2, 3, ...; got {versions}")


def _version_table_ddl(version_table: str) -> str:
    # AppliedTime is the commit timestamp of the bookkeeping write: Spanner's own clock, which is
    # what an operator comparing with the instance's audit logs wants.
    return (
        f"CREATE TABLE IF NOT EXISTS {version_table} ("
        " Version INT64 NOT NULL,"
        " Description STRING(MAX) NOT NULL,"
        " AppliedTime TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true)"
        ") PRIMARY KEY (Version)"
    )


def _table_exists(connection: SpannerConnection, table: str) -> bool:
    with connection.database.snapshot() as snapshot:
        rows = snapshot.execute_sql(
            "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES"
            " WHERE TABLE_SCHEMA = '' AND TABLE_NAME = @table",
            params={"table": table},
            param_types={"table": _string_type()},
        )
        return int(next(iter(rows))[0]) > 0


def _apply_ddl(connection: SpannerConnection, statements: Sequence[str]) -> None:
    connection.database.update_ddl(list(statements)).result(_DDL_TIMEOUT_SECONDS)


def _record(connection: SpannerConnection, version_table: str, migration: DdlMigration) -> None:
    from google.cloud import spanner

    with connection.database.batch() as batch:
        batch.insert_or_update(
            version_table,
            columns=("Version", "Description", "AppliedTime"),
            values=[(migration.version, migration.description, spanner.COMMIT_TIMESTAMP)],
        )


def _string_type() -> object:
    from google.cloud.spanner_v1 import param_types

    return param_types.STRING
