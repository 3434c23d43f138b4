"""Commands whose flags come from a settings model: flags beat CMMS_* variables beat defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cmms.common.errors import UserError
from cmms.common.settings import CmmsSettings
from cmms.deploy.cli._settings_options import settings_command


class ExampleSettings(CmmsSettings):
    duchy_name: str
    blob_storage_url: str = "file:///tmp/blobs"
    port: int = 8443
    cert_host: str | None = None
    key_file: Path | None = None
    migrate: bool = False


def make_app(seen: list[ExampleSettings]) -> typer.Typer:
    app = typer.Typer(rich_markup_mode=None)
    settings_command(app, "serve", ExampleSettings, "Serve something.")(seen.append)

    @app.command("other")
    def other() -> None:  # a second command keeps `serve` a named subcommand
        pass

    return app


def test_flags_environment_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMMS_DUCHY_NAME", "from-env")
    monkeypatch.setenv("CMMS_PORT", "1234")
    seen: list[ExampleSettings] = []
    result = CliRunner().invoke(
        make_app(seen), ["serve", "--port", "99", "--migrate", "--key-file", "/k.pem"]
    )
    assert result.exit_code == 0, result.output
    (settings,) = seen
    assert settings.duchy_name == "from-env"
    assert settings.port == 99
    assert settings.migrate is True
    assert settings.key_file == Path("/k.pem")
    assert settings.blob_storage_url == "file:///tmp/blobs"
    assert settings.cert_host is None


def test_help_names_flags_and_variables() -> None:
    result = CliRunner().invoke(make_app([]), ["serve", "--help"])
    assert result.exit_code == 0
    for text in ("--duchy-name", "CMMS_DUCHY_NAME", "--no-migrate", "--cert-host"):
        assert text in result.output


def test_missing_settings_name_the_flag_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CMMS_DUCHY_NAME", raising=False)
    result = CliRunner().invoke(make_app([]), ["serve"])
    assert isinstance(result.exception, UserError)
    assert "--duchy-name (or CMMS_DUCHY_NAME)" in str(result.exception)
