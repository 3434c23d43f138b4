"""Duration flags: `90d`, `5m`, `1h30m`, `250ms` or seconds, in and out of settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import BaseModel, ValidationError

from cmms.common.durations import Duration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90d", timedelta(days=90)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2.5s", timedelta(seconds=2.5)),
        ("250ms", timedelta(milliseconds=250)),
        ("300", timedelta(seconds=300)),
        (" 0 ", timedelta(0)),
        ("2S", timedelta(seconds=2)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["-5m", "5 minutes", "m", "5x", "1h 30m", "1.2.3s"])
def test_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_round_trips() -> None:
    for value in (timedelta(days=180), timedelta(minutes=5), timedelta(hours=1, seconds=1)):
        assert parse_duration(format_duration(value)) == value
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(0)) == "0s"


class Model(BaseModel):
    ttl: Duration


def test_a_settings_field_accepts_text_seconds_and_timedeltas() -> None:
    assert Model(ttl="90d").ttl == timedelta(days=90)  # type: ignore[arg-type]
    assert Model(ttl=30).ttl == timedelta(seconds=30)  # type: ignore[arg-type]
    assert Model(ttl=timedelta(hours=2)).ttl == timedelta(hours=2)
    assert Model(ttl=timedelta(minutes=5)).model_dump(mode="json") == {"ttl": "5m"}
    with pytest.raises(ValidationError):
        Model(ttl="soon")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Model(ttl=-1)  # type: ignore[arg-type]
