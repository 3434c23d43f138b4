"""This duchy's place in each protocol: the protocols setup config (duchy_internals §9.1).

A small YAML or JSON file. It names duchies rather than roles, the same way the Kingdom's config
does, so every duchy of a deployment can share one file and derive its own role from its name::

    llv2:                     # Liquid Legions v2: the aggregator; every other duchy is a worker
      aggregator: aggregator
    reach_only_llv2:
      aggregator: aggregator
    hmss:                     # Honest Majority Share Shuffle: the three fixed roles
      first_non_aggregator: worker1
      second_non_aggregator: worker2
      aggregator: aggregator
    trustee:                  # TrusTee: the one duchy that runs it
      duchy: aggregator

A protocol left out is one this duchy does not run; its computations fail at creation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from cmms.common.errors import UserError
from cmms.protocols.stages import RoleInComputation


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LiquidLegionsSetup(_Strict):
    aggregator: str

    def role_of(self, duchy_id: str) -> RoleInComputation:
        if duchy_id == self.aggregator:
            return RoleInComputation.AGGREGATOR
        return RoleInComputation.NON_AGGREGATOR


class HmssSetup(_Strict):
    first_non_aggregator: str
    second_non_aggregator: str
    aggregator: str

    @model_validator(mode="after")
    def _three_different_duchies(self) -> HmssSetup:
        ids = {self.first_non_aggregator, self.second_non_aggregator, self.aggregator}
        if len(ids) != 3:
            raise ValueError("hmss needs three different duchies")
        return self

    @property
    def non_aggregators(self) -> tuple[str, str]:
        return (self.first_non_aggregator, self.second_non_aggregator)

    def role_of(self, duchy_id: str) -> RoleInComputation | None:
        """`None` for a duchy that takes no part in HMSS."""
        return {
            self.first_non_aggregator: RoleInComputation.FIRST_NON_AGGREGATOR,
            self.second_non_aggregator: RoleInComputation.SECOND_NON_AGGREGATOR,
            self.aggregator: RoleInComputation.AGGREGATOR,
        }.get(duchy_id)


class TrusTeeSetup(_Strict):
    duchy: str


class ProtocolsSetupConfig(_Strict):
    llv2: LiquidLegionsSetup | None = None
    reach_only_llv2: LiquidLegionsSetup | None = None
    hmss: HmssSetup | None = None
    trustee: TrusTeeSetup | None = None


class ProtocolsSetupConfigError(UserError):
    """The protocols setup config file is missing, unparsable or invalid."""


def parse_protocols_setup_config(text: str, *, source: str = "config") -> ProtocolsSetupConfig:
    """Parse YAML (a superset of JSON) text into the config."""
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ProtocolsSetupConfigError(f"{source} is not YAML or JSON: {error}") from error
    try:
        return ProtocolsSetupConfig.model_validate(raw if raw is not None else {})
    except ValidationError as error:
        raise ProtocolsSetupConfigError(
            f"{source} is not a valid protocols setup config: {error}"
        ) from error


def load_protocols_setup_config(path: Path) -> ProtocolsSetupConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProtocolsSetupConfigError(
            f"cannot read protocols setup config {path}: {error}"
        ) from error
    return parse_protocols_setup_config(text, source=str(path))


def dump_protocols_setup_config(config: ProtocolsSetupConfig) -> str:
    """JSON text that `parse_protocols_setup_config` reads back to `config`."""
    return json.dumps(config.model_dump(mode="json", exclude_none=True), indent=2)
