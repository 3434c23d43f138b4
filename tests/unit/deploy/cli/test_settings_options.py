"""Flags generated from a settings model: durations, choices, repeated lists and KEY=VALUE maps."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from cmms.common.durations import Duration
from cmms.common.settings import CmmsSettings
from cmms.deploy.cli._settings_options import settings_command


class Example(CmmsSettings):
    name: str
    mode: Literal["fast", "careful"] = "careful"
    pause: Duration = timedelta(seconds=2)
    words: list[str] = Field(default_factory=list)
    variables: dict[str, str] = Field(default_factory=dict)


@pytest.fixture
def seen() -> list[Example]:
    return []


def app(seen: list[Example]) -> typer.Typer:
    application = typer.Typer(rich_markup_mode=None)
    settings_command(application, "example", Example, "An example.")(seen.append)
    # A second command keeps typer from collapsing the app into its only command.
    application.command("other")(lambda: None)
    return application


def invoke(seen: list[Example], *args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(app(seen), ["example", *args], env=env)
    return result.output if result.exception is None else f"{result.exception}"


def test_repeated_flags_durations_and_choices(seen: list[Example]) -> None:
    invoke(
        seen,
        "--name=n",
        "--mode=fast",
        "--pause=1m30s",
        "--words=--one",
        "--words=two",
        "--variables=A=1",
        "--variables=B=x=y",
    )
    (settings,) = seen
    assert settings.mode == "fast"
    assert settings.pause == timedelta(seconds=90)
    assert settings.words == ["--one", "two"]
    assert settings.variables == {"A": "1", "B": "x=y"}


def test_lists_and_maps_come_from_json_variables(seen: list[Example]) -> None:
    env = {"CMMS_NAME": "n", "CMMS_WORDS": '["a b", "c"]', "CMMS_VARIABLES": '{"K": "v"}'}
    invoke(seen, env=env)
    (settings,) = seen
    assert settings.words == ["a b", "c"]
    assert settings.variables == {"K": "v"}
    assert settings.pause == timedelta(seconds=2) and settings.mode == "careful"


def test_bad_values_are_refused(seen: list[Example]) -> None:
    assert "KEY=VALUE" in invoke(seen, "--name=n", "--variables=novalue")
    assert "--mode" in invoke(seen, "--name=n", "--mode=reckless")
    assert "--pause" in invoke(seen, "--name=n", "--pause=later")
    assert seen == []


def test_help_shows_durations_choices_and_repetition(seen: list[Example]) -> None:
    text = " ".join(CliRunner().invoke(app(seen), ["example", "--help"]).output.split())
    assert "[default: 2s]" in text
    assert "(fast|careful)" in text
    assert "repeatable KEY=VALUE (CMMS_VARIABLES as JSON)" in text
