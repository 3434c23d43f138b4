"""Process settings: pydantic-settings models, every field also readable from `CMMS_<FIELD>`."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CMMS_"


class CmmsSettings(BaseSettings):
    """Base class for component settings.

    Values come, in priority order, from explicit keyword arguments (the CLI passes only the
    flags a user actually gave), then `CMMS_<FIELD_NAME>` environment variables, then defaults.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, populate_by_name=True
    )


def env_name(field: str) -> str:
    """The environment variable that sets `field` (e.g. `duchy_name` -> `CMMS_DUCHY_NAME`)."""
    return ENV_PREFIX + field.upper().replace("-", "_")
