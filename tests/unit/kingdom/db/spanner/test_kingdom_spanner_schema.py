"""The Kingdom's Spanner schema: mirrors the SQL schema, versioned, re-running is a no-op."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, Text
from typer.testing import CliRunner

from cmms.common.errors import UserError
from cmms.common.pki import PkiLayout
from cmms.common.spanner.connection import open_spanner
from cmms.common.spanner.url import SpannerUrl
from cmms.deploy.cli import app
from cmms.kingdom.db import migrate
from cmms.kingdom.db.schema import metadata
from cmms.kingdom.db.spanner.migrate import current_spanner_revision, upgrade_spanner
from cmms.kingdom.db.spanner.schema import MIGRATIONS, VERSION_TABLE
from cmms.testing.spanner_emulator import SpannerEmulator

_SPANNER_TYPES = {
    BigInteger: "INT64",
    Integer: "INT64",
    Text: "STRING(MAX)",
    LargeBinary: "BYTES(MAX)",
    Boolean: "BOOL",
}
runner = CliRunner()
# Spanner-only: the commit timestamp of the last write (for operators; see schema.py).
_EXTRA_COLUMNS = {("kingdom_clock", "commit_time", "TIMESTAMP", False)}


def spanner_columns(url: str) -> set[tuple[str, str, str, bool]]:
    connection = open_spanner(SpannerUrl.parse(url))
    try:
        with connection.database.snapshot() as snapshot:
            rows = snapshot.execute_sql(
                "SELECT TABLE_NAME, COLUMN_NAME, SPANNER_TYPE, IS_NULLABLE"
                " FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ''"
            )
            return {(t, c, kind, nullable == "YES") for t, c, kind, nullable in rows}
    finally:
        connection.close()


def sql_columns() -> set[tuple[str, str, str, bool]]:
    return {
        (table.name, column.name, _SPANNER_TYPES[type(column.type)], bool(column.nullable))
        for table in metadata.tables.values()
        for column in table.columns
    }


def test_the_spanner_tables_have_the_sql_schema_columns(spanner_emulator: SpannerEmulator) -> None:
    url = spanner_emulator.new_database_url("kingdom")
    assert current_spanner_revision(url) is None  # the database does not exist yet
    assert upgrade_spanner(url) == MIGRATIONS[-1].version
    found = {c for c in spanner_columns(url) if c[0] != VERSION_TABLE}
    assert found == sql_columns() | _EXTRA_COLUMNS


def test_re_running_the_upgrade_changes_nothing(spanner_emulator: SpannerEmulator) -> None:
    url = spanner_emulator.new_database_url("kingdom")
    upgrade_spanner(url)
    before = spanner_columns(url)
    assert upgrade_spanner(url) == MIGRATIONS[-1].version
    assert upgrade_spanner(url, "1") == 1
    assert spanner_columns(url) == before
    assert current_spanner_revision(url) == MIGRATIONS[-1].version


def test_cli_migrates_and_seeds_a_spanner_database(
    spanner_emulator: SpannerEmulator, dev_pki: PkiLayout, tmp_path: Path
) -> None:
    url = spanner_emulator.new_database_url("kingdom")
    migrated = runner.invoke(app, ["kingdom", "db", "migrate", "--database-url", url])
    assert migrated.exit_code == 0, migrated.output
    assert f"revision {MIGRATIONS[-1].version}" in migrated.output
    assert migrate.current_revision(url) == str(MIGRATIONS[-1].version)
    again = runner.invoke(app, ["kingdom", "db", "migrate", "--database-url", url])
    assert again.exit_code == 0, again.output

    config = tmp_path / "kingdom.yaml"
    config.write_text(runner.invoke(app, ["kingdom", "example-config"]).output)
    arguments = ["kingdom", "seed", "--pki", str(dev_pki.directory), "--config", str(config)]
    first = runner.invoke(app, [*arguments, "--database-url", url])
    second = runner.invoke(app, [*arguments, "--database-url", url])
    assert first.exit_code == 0, first.output
    assert first.output == second.output
    assert "registered duchies/worker1" in first.output
    assert first.output.count("certificate ") == 7


def test_cli_refuses_a_malformed_spanner_url() -> None:
    result = runner.invoke(
        app, ["kingdom", "db", "migrate", "--database-url", "spanner://projects/p/db"]
    )
    assert isinstance(result.exception, UserError)
    assert "spanner://projects/PROJECT" in str(result.exception)
