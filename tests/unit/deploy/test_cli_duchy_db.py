"""`cmms duchy db migrate`: creates the schema from a URL given by flag or environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmms.deploy.cli import main
from cmms.duchy.db import migrate


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_migrate_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'duchy.db'}"
    assert run(["duchy", "db", "migrate", "--database-url", url]) == 0
    assert migrate.current_revision(url) == "0001"
    assert "revision 0001" in capsys.readouterr().out
    # Running it again at every start is harmless.
    assert run(["duchy", "db", "migrate", "--database-url", url]) == 0


def test_migrate_reads_the_url_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'from-env.db'}"
    monkeypatch.setenv("CMMS_DATABASE_URL", url)
    assert run(["duchy", "db", "migrate"]) == 0
    assert migrate.current_revision(url) == "0001"


def test_an_unsupported_url_is_one_line_and_a_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CMMS_DATABASE_URL", raising=False)
    assert run(["duchy", "db", "migrate", "--database-url", "mysql://h/db"]) != 0
    err = capsys.readouterr().err
    assert err.startswith("cmms: error:") and "mysql" in err
    assert err.strip().count("\n") == 0


def test_a_missing_url_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CMMS_DATABASE_URL", raising=False)
    assert run(["duchy", "db", "migrate"]) != 0
