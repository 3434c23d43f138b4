"""Logging writes JSON lines to the stderr current at write time."""

from __future__ import annotations

import io
import json
import sys

import pytest

from cmms.common.logging import configure_logging, get_logger


def test_lines_follow_a_replaced_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging("INFO")
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logger = get_logger("test", component="a")
    logger.info("one")
    monkeypatch.setattr(sys, "stderr", second)
    logger.info("two", n=2)
    assert json.loads(first.getvalue())["event"] == "one"
    line = json.loads(second.getvalue())
    assert line["event"] == "two" and line["n"] == 2 and line["component"] == "a"


def test_unknown_level_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("LOUD")
