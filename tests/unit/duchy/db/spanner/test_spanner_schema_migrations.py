"""The duchy's Spanner schema: created with the database, versioned, re-running is a no-op."""

from __future__ import annotations

import pytest

from cmms.common.errors import UserError
from cmms.common.spanner.connection import ensure_database, open_spanner
from cmms.common.spanner.url import SpannerUrl
from cmms.deploy.cli import main
from cmms.duchy.db import migrate
from cmms.duchy.db.spanner.migrate import current_spanner_revision, upgrade_spanner
from cmms.duchy.db.spanner.schema import MIGRATIONS, VERSION_TABLE
from cmms.testing.spanner_emulator import SpannerEmulator

TABLES = {
    "Computations",
    "ComputationStages",
    "ComputationStageAttempts",
    "ComputationBlobReferences",
    "Requisitions",
    "ComputationStats",
    "HeraldContinuationTokens",
    VERSION_TABLE,
}


def tables(url: str) -> set[str]:
    connection = open_spanner(SpannerUrl.parse(url))
    try:
        with connection.database.snapshot() as snapshot:
            rows = snapshot.execute_sql(
                "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ''"
            )
            return {row[0] for row in rows}
    finally:
        connection.close()


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_upgrade_creates_the_database_and_every_table(spanner_emulator: SpannerEmulator) -> None:
    url = spanner_emulator.new_database_url()
    assert current_spanner_revision(url) is None  # the database does not exist yet
    assert upgrade_spanner(url) == MIGRATIONS[-1].version
    assert tables(url) == TABLES
    assert current_spanner_revision(url) == MIGRATIONS[-1].version


def test_re_running_the_upgrade_changes_nothing(spanner_emulator: SpannerEmulator) -> None:
    url = spanner_emulator.new_database_url()
    upgrade_spanner(url)
    connection = open_spanner(SpannerUrl.parse(url))
    try:
        connection.database.reload()
        ddl_before = connection.database.ddl_statements
        assert upgrade_spanner(url) == MIGRATIONS[-1].version
        connection.database.reload()
        assert connection.database.ddl_statements == ddl_before
    finally:
        connection.close()


def test_a_batch_applied_without_its_bookkeeping_row_is_applied_again_harmlessly(
    spanner_emulator: SpannerEmulator,
) -> None:
    # As if a migrating process died between the DDL and recording the version.
    url = spanner_emulator.new_database_url()
    connection = open_spanner(SpannerUrl.parse(url))
    try:
        ensure_database(connection)
        connection.database.update_ddl(list(MIGRATIONS[0].statements)).result(120)
    finally:
        connection.close()
    assert upgrade_spanner(url) == MIGRATIONS[-1].version
    assert tables(url) == TABLES


def test_revisions_are_numbers(spanner_emulator: SpannerEmulator) -> None:
    url = spanner_emulator.new_database_url()
    with pytest.raises(UserError, match="numbers"):
        upgrade_spanner(url, "0001_initial")
    with pytest.raises(UserError, match="unknown schema version"):
        upgrade_spanner(url, "99")


def test_cli_migrate_takes_a_spanner_url(
    spanner_emulator: SpannerEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    url = spanner_emulator.new_database_url()
    assert run(["duchy", "db", "migrate", "--database-url", url]) == 0
    assert f"revision {MIGRATIONS[-1].version}" in capsys.readouterr().out
    assert migrate.current_revision(url) == str(MIGRATIONS[-1].version)
    assert run(["duchy", "db", "migrate", "--database-url", url]) == 0


def test_cli_refuses_a_malformed_spanner_url_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["duchy", "db", "migrate", "--database-url", "spanner://projects/p/db"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("cmms: error:") and "spanner://projects/PROJECT" in err
    assert err.strip().count("\n") == 0
