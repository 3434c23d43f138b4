"""Operator-friendly durations: `90d`, `5m`, `1h30m`, `2.5s`, `250ms`, or plain seconds (`300`).

Flags such as `--work-lock-duration=5m` and `--computations-time-to-live=90d` read better than
seconds; `Duration` lets a settings field accept either form (and a `timedelta`).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


def parse_duration(text: str) -> timedelta:
    """`timedelta` for `text`; raises `ValueError` for anything else (negative values included)."""
    cleaned = text.strip().lower()
    try:
        return timedelta(seconds=float(cleaned)) if _is_number(cleaned) else _parse_units(cleaned)
    except OverflowError as error:
        raise ValueError(f"duration {text!r} is too long") from error


def format_duration(value: timedelta) -> str:
    """The shortest `parse_duration` spelling of `value` in whole units (`0s` for zero)."""
    remaining = value
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms"):
        count = remaining // _UNITS[unit]
        if count:
            parts.append(f"{count}{unit}")
            remaining -= count * _UNITS[unit]
    return "".join(parts) or "0s"


def _is_number(text: str) -> bool:
    return re.fullmatch(r"\d+(?:\.\d+)?", text) is not None


def _parse_units(text: str) -> timedelta:
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"not a duration: {text!r} (use e.g. 90d, 5m, 1h30m, 2s, 250ms)")
    return sum((float(number) * _UNITS[unit] for number, unit in _PART.findall(text)), timedelta(0))


def _coerce(value: object) -> object:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    return value


# A settings field type: accepts "5m", 300, or a timedelta; serialises back to "5m".
Duration = Annotated[
    timedelta,
    BeforeValidator(_coerce),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
