"""The Kingdom's deployment config: duchies, protocol parameters, enable flags, TTL.

Read from a YAML or JSON file (same structure) and validated by pydantic. Example (YAML)::

    duchies:                       # the duchy ID config, in this order (it matters, §1.8/§1.12)
      - {id: aggregator, active_start_time: "2022-01-01T00:00:00Z"}
      - {id: worker1, active_start_time: "2022-01-01T00:00:00Z"}
      - {id: worker2, active_start_time: "2022-01-01T00:00:00Z", active_end_time: null}
    llv2:                          # LLv2 (reach and frequency with >= 2 EDPs)
      aggregator: aggregator       # the duchy allowed to set results
      required_duchies: [aggregator]
      minimum_duchy_count: 2
      sketch: {decay_rate: 5.6, max_size: 1000000, sampling_indicator_size: 10000000}
      data_provider_noise: {epsilon: 1.0, delta: 1.0}     # optional
      mpc_noise:
        blinded_histogram: {epsilon: 1.0, delta: 1.0}
        publisher: {epsilon: 1.0, delta: 1.0}
      elliptic_curve_id: 415
      noise_mechanism: DISCRETE_GAUSSIAN
    reach_only_llv2:               # same fields as llv2, plus `enabled`
      enabled: true
      ...
    hmss:
      enabled: true                # or list MCs in enabled_for_measurement_consumers
      enabled_for_measurement_consumers: []
      reach_and_frequency_ring_modulus: 127
      reach_ring_modulus: 127
      noise_mechanism: DISCRETE_GAUSSIAN
      first_non_aggregator: worker1
      second_non_aggregator: worker2
      aggregator: aggregator
    trustee:
      enabled: false
      enabled_for_measurement_consumers: []
      duchy: aggregator
      noise_mechanism: CONTINUOUS_GAUSSIAN
      fallback_noise_mechanisms: []
      result_minimum_thresholds: {min_impressions: 0, min_users: 0}   # optional
    direct:
      noise_mechanisms: [NONE, CONTINUOUS_LAPLACE, CONTINUOUS_GAUSSIAN]
    measurement_ttl_seconds: 1296000   # 15 days
    ttl_job_period_seconds: 3600

Noise mechanisms: NONE, GEOMETRIC, DISCRETE_GAUSSIAN, CONTINUOUS_LAPLACE, CONTINUOUS_GAUSSIAN,
DETERMINISTIC_TRUNCATED_LAPLACE. Times are RFC 3339 with a zone.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cmms.common.errors import UserError
from cmms.crypto.ring import is_prime


class NoiseMechanism(enum.StrEnum):
    NONE = "NONE"
    GEOMETRIC = "GEOMETRIC"
    DISCRETE_GAUSSIAN = "DISCRETE_GAUSSIAN"
    CONTINUOUS_LAPLACE = "CONTINUOUS_LAPLACE"
    CONTINUOUS_GAUSSIAN = "CONTINUOUS_GAUSSIAN"
    DETERMINISTIC_TRUNCATED_LAPLACE = "DETERMINISTIC_TRUNCATED_LAPLACE"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DuchyConfig(_Model):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    active_start_time: datetime
    active_end_time: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        if now < self.active_start_time:
            return False
        return self.active_end_time is None or now < self.active_end_time


class PrivacyParams(_Model):
    epsilon: float = Field(ge=0)
    delta: float = Field(ge=0)


class SketchParams(_Model):
    decay_rate: float = Field(gt=0)
    max_size: int = Field(gt=0)
    sampling_indicator_size: int = Field(default=0, ge=0)


class MpcNoise(_Model):
    blinded_histogram: PrivacyParams
    publisher: PrivacyParams


class LiquidLegionsConfig(_Model):
    enabled: bool = True
    aggregator: str
    required_duchies: tuple[str, ...] = ()
    minimum_duchy_count: int = Field(default=3, ge=1)
    sketch: SketchParams
    data_provider_noise: PrivacyParams | None = None
    mpc_noise: MpcNoise
    elliptic_curve_id: int = 415
    noise_mechanism: NoiseMechanism = NoiseMechanism.DISCRETE_GAUSSIAN


class HmssConfig(_Model):
    enabled: bool = False
    enabled_for_measurement_consumers: tuple[str, ...] = ()
    # int32 on the wire; creation also checks each against the measurement (planning).
    reach_and_frequency_ring_modulus: int = Field(default=127, gt=1, le=2**31 - 1)
    reach_ring_modulus: int = Field(default=127, gt=1, le=2**31 - 1)
    noise_mechanism: NoiseMechanism = NoiseMechanism.DISCRETE_GAUSSIAN
    first_non_aggregator: str
    second_non_aggregator: str
    aggregator: str

    @model_validator(mode="after")
    def _distinct_roles(self) -> HmssConfig:
        roles = {self.first_non_aggregator, self.second_non_aggregator, self.aggregator}
        if len(roles) != 3:
            raise ValueError("the three HMSS roles need three different duchies")
        return self

    @model_validator(mode="after")
    def _prime_reach_modulus(self) -> HmssConfig:
        # Reach-only HMSS multiplies shares by random non-zero factors, which needs a field.
        if not is_prime(self.reach_ring_modulus):
            raise ValueError(f"reach_ring_modulus must be prime, got {self.reach_ring_modulus}")
        return self

    def enabled_for(self, measurement_consumer: str) -> bool:
        return self.enabled or measurement_consumer in self.enabled_for_measurement_consumers


class ResultMinimumThresholds(_Model):
    min_impressions: int = Field(default=0, ge=0)
    min_users: int = Field(default=0, ge=0)


class TrusTeeConfig(_Model):
    enabled: bool = False
    enabled_for_measurement_consumers: tuple[str, ...] = ()
    duchy: str
    noise_mechanism: NoiseMechanism = NoiseMechanism.CONTINUOUS_GAUSSIAN
    fallback_noise_mechanisms: tuple[NoiseMechanism, ...] = ()
    result_minimum_thresholds: ResultMinimumThresholds | None = None

    def enabled_for(self, measurement_consumer: str) -> bool:
        return self.enabled or measurement_consumer in self.enabled_for_measurement_consumers


class DirectConfig(_Model):
    noise_mechanisms: tuple[NoiseMechanism, ...] = (
        NoiseMechanism.NONE,
        NoiseMechanism.CONTINUOUS_LAPLACE,
        NoiseMechanism.CONTINUOUS_GAUSSIAN,
    )


class KingdomConfig(_Model):
    duchies: tuple[DuchyConfig, ...]
    llv2: LiquidLegionsConfig
    reach_only_llv2: LiquidLegionsConfig | None = None
    hmss: HmssConfig | None = None
    trustee: TrusTeeConfig | None = None
    direct: DirectConfig = DirectConfig()
    measurement_ttl_seconds: float = Field(default=15 * 86_400, gt=0)
    ttl_job_period_seconds: float = Field(default=3600, gt=0)

    @model_validator(mode="after")
    def _known_duchies(self) -> KingdomConfig:
        ids = [d.id for d in self.duchies]
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate duchy id in `duchies`")
        named: list[tuple[str, str]] = [("llv2.aggregator", self.llv2.aggregator)]
        if self.reach_only_llv2 is not None:
            named.append(("reach_only_llv2.aggregator", self.reach_only_llv2.aggregator))
        if self.hmss is not None:
            named += [
                ("hmss.first_non_aggregator", self.hmss.first_non_aggregator),
                ("hmss.second_non_aggregator", self.hmss.second_non_aggregator),
                ("hmss.aggregator", self.hmss.aggregator),
            ]
        if self.trustee is not None:
            named.append(("trustee.duchy", self.trustee.duchy))
        for field, duchy_id in named:
            if duchy_id not in ids:
                raise ValueError(f"{field} names unknown duchy {duchy_id!r}")
        return self

    @property
    def duchy_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.duchies)

    def duchy(self, duchy_id: str) -> DuchyConfig | None:
        return next((d for d in self.duchies if d.id == duchy_id), None)

    def active_duchy_ids(self, now: datetime) -> tuple[str, ...]:
        return tuple(d.id for d in self.duchies if d.is_active(now))

    def reach_only_llv2_enabled(self) -> bool:
        return self.reach_only_llv2 is not None and self.reach_only_llv2.enabled


def parse_config(document: Any) -> KingdomConfig:
    """Validate a parsed YAML/JSON document; raises `UserError` with pydantic's explanation."""
    try:
        return KingdomConfig.model_validate(document)
    except ValidationError as exc:
        raise UserError(f"invalid Kingdom config: {exc}") from exc


def load_config(path: Path) -> KingdomConfig:
    """Read a `.json`, `.yaml` or `.yml` config file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot read Kingdom config {path}: {exc}") from exc
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise UserError(f"Kingdom config {path} is not valid YAML/JSON: {exc}") from exc
    return parse_config(document)


def example_config(
    duchy_ids: Sequence[str] = ("aggregator", "worker1", "worker2"),
) -> KingdomConfig:
    """The reference test deployment's values (HMSS and RoLLv2 on, TrusTee off)."""
    aggregator, first, second = duchy_ids[0], duchy_ids[1], duchy_ids[2]
    since = "2022-01-01T00:00:00Z"
    mpc = {"blinded_histogram": {"epsilon": 1, "delta": 1}, "publisher": {"epsilon": 1, "delta": 1}}
    llv2 = {
        "aggregator": aggregator,
        "required_duchies": [aggregator],
        "minimum_duchy_count": 2,
        "sketch": {"decay_rate": 5.6, "max_size": 1_000_000, "sampling_indicator_size": 10_000_000},
        "data_provider_noise": {"epsilon": 1, "delta": 1},
        "mpc_noise": mpc,
    }
    ro_llv2 = {**llv2, "sketch": {"decay_rate": 5.6, "max_size": 1_000_000}, "enabled": True}
    return parse_config(
        {
            "duchies": [{"id": d, "active_start_time": since} for d in duchy_ids],
            "llv2": llv2,
            "reach_only_llv2": ro_llv2,
            "hmss": {
                "enabled": True,
                "first_non_aggregator": first,
                "second_non_aggregator": second,
                "aggregator": aggregator,
            },
            "trustee": {"enabled": False, "duchy": aggregator},
        }
    )
