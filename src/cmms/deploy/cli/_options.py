"""Helpers shared by CLI command modules."""

from __future__ import annotations

from typing import Any

from cmms.common.settings import env_name


def settings_kwargs(**given: Any) -> dict[str, Any]:
    """Drop options the user did not give, so pydantic-settings falls back to env vars and defaults."""
    return {k: v for k, v in given.items() if v is not None}


def envvar(field: str) -> str:
    """Env var name shown in `--help` for a flag backed by settings field `field`."""
    return env_name(field)
