"""Which protocol and which duchies a new measurement gets (spec §1.11, §1.12, §1.8).

Pure functions of the config, the measurement type, the EDPs' facts and the time.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cmms.kingdom.config import KingdomConfig, NoiseMechanism
from cmms.kingdom.db.records import Capabilities, Protocol
from cmms.kingdom.errors import failed_precondition


class MeasurementType(enum.StrEnum):
    REACH = "REACH"
    REACH_AND_FREQUENCY = "REACH_AND_FREQUENCY"
    IMPRESSION = "IMPRESSION"
    DURATION = "DURATION"
    POPULATION = "POPULATION"


@dataclass(frozen=True)
class EdpFacts:
    """What protocol and duchy selection need to know about one EDP of the measurement."""

    data_provider_id: str
    capabilities: Capabilities
    required_duchies: tuple[str, ...]


@dataclass(frozen=True)
class ProtocolChoice:
    protocol: Protocol
    # TrusTee may fall back to another mechanism; None means "the configured one".
    noise_mechanism: NoiseMechanism | None = None


def _supports(capabilities: Capabilities, mechanism: NoiseMechanism) -> bool:
    # Only DTL needs an explicit capability; every EDP can apply the other mechanisms.
    if mechanism is NoiseMechanism.DETERMINISTIC_TRUNCATED_LAPLACE:
        return capabilities.noise_dtl_supported
    return True


def _trustee_mechanism(config: KingdomConfig, edps: Sequence[EdpFacts]) -> NoiseMechanism | None:
    trustee = config.trustee
    assert trustee is not None
    for mechanism in (trustee.noise_mechanism, *trustee.fallback_noise_mechanisms):
        if all(_supports(e.capabilities, mechanism) for e in edps):
            return mechanism
    return None


def choose_protocol(
    config: KingdomConfig,
    measurement_type: MeasurementType,
    measurement_consumer_id: str,
    edps: Sequence[EdpFacts],
) -> ProtocolChoice:
    """The first matching rule of §1.11 wins."""
    if measurement_type not in (MeasurementType.REACH, MeasurementType.REACH_AND_FREQUENCY):
        return ProtocolChoice(Protocol.DIRECT)
    if len(edps) == 1:
        return ProtocolChoice(Protocol.DIRECT)
    mc_name = f"measurementConsumers/{measurement_consumer_id}"
    trustee = config.trustee
    if (
        trustee is not None
        and (trustee.enabled_for(mc_name) or trustee.enabled_for(measurement_consumer_id))
        and all(e.capabilities.trustee_supported for e in edps)
    ):
        mechanism = _trustee_mechanism(config, edps)
        if mechanism is not None:
            return ProtocolChoice(Protocol.TRUSTEE, mechanism)
    hmss = config.hmss
    if (
        hmss is not None
        and (hmss.enabled_for(mc_name) or hmss.enabled_for(measurement_consumer_id))
        and all(e.capabilities.hmss_supported for e in edps)
    ):
        return ProtocolChoice(Protocol.HMSS)
    if measurement_type is MeasurementType.REACH and config.reach_only_llv2_enabled():
        return ProtocolChoice(Protocol.REACH_ONLY_LLV2)
    return ProtocolChoice(Protocol.LLV2)


def check_ring_modulus(
    config: KingdomConfig,
    protocol: Protocol,
    measurement_type: MeasurementType,
    maximum_frequency: int,
    edp_count: int,
) -> None:
    """HMSS adds the EDPs' shares in a ring of `q` elements, which must hold every combined
    value plus the sentinel: R&F needs q > 1 + MF x #EDPs, reach q > 1 + #EDPs. Otherwise the
    duchies would fail the computation much later; FAILED_PRECONDITION at creation instead."""
    if protocol is not Protocol.HMSS:
        return
    hmss = config.hmss
    assert hmss is not None  # HMSS is only chosen when configured
    if measurement_type is MeasurementType.REACH_AND_FREQUENCY:
        modulus, largest = hmss.reach_and_frequency_ring_modulus, maximum_frequency * edp_count
        what = f"maximum_frequency {maximum_frequency} over {edp_count} data providers"
    else:
        modulus, largest = hmss.reach_ring_modulus, edp_count
        what = f"reach over {edp_count} data providers"
    if modulus <= 1 + largest:
        raise failed_precondition(
            f"the HMSS ring modulus {modulus} is too small for {what} "
            f"(it must exceed {1 + largest}); use fewer data providers or a lower frequency"
        )


def allows_wrapping_sampling_interval(protocol: Protocol) -> bool:
    return protocol in (Protocol.HMSS, Protocol.TRUSTEE)


def _require_active(config: KingdomConfig, duchy_ids: Sequence[str], now: datetime) -> None:
    for duchy_id in duchy_ids:
        duchy = config.duchy(duchy_id)
        if duchy is None or not duchy.is_active(now):
            raise failed_precondition(f"inactive required duchy {duchy_id!r}")


def choose_duchies(
    config: KingdomConfig, protocol: Protocol, edps: Sequence[EdpFacts], now: datetime
) -> tuple[str, ...]:
    """The participating duchies, in duchy-ID-config order; FAILED_PRECONDITION if impossible."""
    if protocol is Protocol.DIRECT:
        return ()
    if protocol is Protocol.HMSS:
        assert config.hmss is not None
        chosen = {
            config.hmss.first_non_aggregator,
            config.hmss.second_non_aggregator,
            config.hmss.aggregator,
        }
        _require_active(config, sorted(chosen), now)
    elif protocol is Protocol.TRUSTEE:
        assert config.trustee is not None
        chosen = {config.trustee.duchy}
        _require_active(config, sorted(chosen), now)
    else:
        ll = config.llv2 if protocol is Protocol.LLV2 else config.reach_only_llv2
        assert ll is not None
        known = set(config.duchy_ids)
        required = {d for d in ll.required_duchies if d in known}
        for edp in edps:
            # EDPs name duchies as `duchies/{id}` or bare ids; unknown ids are ignored.
            required |= {d.removeprefix("duchies/") for d in edp.required_duchies} & known
        _require_active(config, sorted(required), now)
        chosen = set(required)
        for duchy_id in config.active_duchy_ids(now):
            if len(chosen) >= ll.minimum_duchy_count:
                break
            chosen.add(duchy_id)
        if len(chosen) < ll.minimum_duchy_count:
            raise failed_precondition(
                f"only {len(chosen)} active duchies; {ll.minimum_duchy_count} are required"
            )
    return tuple(d for d in config.duchy_ids if d in chosen)


def aggregator_of(config: KingdomConfig, protocol: Protocol) -> str | None:
    """The duchy allowed to set the result."""
    if protocol is Protocol.LLV2:
        return config.llv2.aggregator
    if protocol is Protocol.REACH_ONLY_LLV2:
        return config.reach_only_llv2.aggregator if config.reach_only_llv2 else None
    if protocol is Protocol.HMSS:
        return config.hmss.aggregator if config.hmss else None
    if protocol is Protocol.TRUSTEE:
        return config.trustee.duchy if config.trustee else None
    return None


def preassigned_duchy(config: KingdomConfig, protocol: Protocol, requisition_id: int) -> str | None:
    """HMSS: `non_aggregators[id mod 2]` in duchy-ID-config order; TrusTee: its duchy; else None."""
    if protocol is Protocol.HMSS:
        assert config.hmss is not None
        workers = {config.hmss.first_non_aggregator, config.hmss.second_non_aggregator}
        non_aggregators = [d for d in config.duchy_ids if d in workers]
        return non_aggregators[requisition_id % 2]
    if protocol is Protocol.TRUSTEE:
        assert config.trustee is not None
        return config.trustee.duchy
    return None
