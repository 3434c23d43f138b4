"""Protocol choice (§1.11), duchy choice (§1.12) and HMSS requisition placement (§1.8)."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from cmms.common.grpc.status import StatusError
from cmms.kingdom.config import NoiseMechanism
from cmms.kingdom.db.records import Capabilities, Protocol
from cmms.kingdom.planning import (
    EdpFacts,
    MeasurementType,
    check_ring_modulus,
    choose_duchies,
    choose_protocol,
    preassigned_duchy,
)
from cmms.testing.kingdom import kingdom_test_config

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HMSS = Capabilities(hmss_supported=True)
BOTH = Capabilities(hmss_supported=True, trustee_supported=True)


def edps(*capabilities: Capabilities, required: tuple[str, ...] = ()) -> list[EdpFacts]:
    return [EdpFacts(f"edp{i}", c, required) for i, c in enumerate(capabilities, 1)]


def test_single_edp_and_non_reach_types_are_direct() -> None:
    config = kingdom_test_config()
    assert (
        choose_protocol(config, MeasurementType.REACH, "mc1", edps(BOTH)).protocol
        is Protocol.DIRECT
    )
    assert (
        choose_protocol(config, MeasurementType.IMPRESSION, "mc1", edps(BOTH, BOTH)).protocol
        is Protocol.DIRECT
    )


def test_trustee_beats_hmss_beats_llv2() -> None:
    on = kingdom_test_config(trustee__enabled=True)
    assert (
        choose_protocol(on, MeasurementType.REACH, "mc1", edps(BOTH, BOTH)).protocol
        is Protocol.TRUSTEE
    )
    assert (
        choose_protocol(on, MeasurementType.REACH, "mc1", edps(BOTH, HMSS)).protocol
        is Protocol.HMSS
    )
    mixed = edps(HMSS, Capabilities())
    assert (
        choose_protocol(on, MeasurementType.REACH_AND_FREQUENCY, "mc1", mixed).protocol
        is Protocol.LLV2
    )
    assert (
        choose_protocol(on, MeasurementType.REACH, "mc1", mixed).protocol
        is Protocol.REACH_ONLY_LLV2
    )
    no_ro = kingdom_test_config(reach_only_llv2__enabled=False)
    assert choose_protocol(no_ro, MeasurementType.REACH, "mc1", mixed).protocol is Protocol.LLV2


def test_hmss_allow_list_and_trustee_fallback() -> None:
    config = kingdom_test_config(
        hmss__enabled=False, hmss__enabled_for_measurement_consumers=["measurementConsumers/mc2"]
    )
    assert (
        choose_protocol(
            config, MeasurementType.REACH_AND_FREQUENCY, "mc1", edps(HMSS, HMSS)
        ).protocol
        is Protocol.LLV2
    )
    assert (
        choose_protocol(
            config, MeasurementType.REACH_AND_FREQUENCY, "mc2", edps(HMSS, HMSS)
        ).protocol
        is Protocol.HMSS
    )
    dtl = kingdom_test_config(
        trustee__enabled=True,
        trustee__noise_mechanism="DETERMINISTIC_TRUNCATED_LAPLACE",
        trustee__fallback_noise_mechanisms=["CONTINUOUS_GAUSSIAN"],
    )
    choice = choose_protocol(dtl, MeasurementType.REACH, "mc1", edps(BOTH, BOTH))
    assert (choice.protocol, choice.noise_mechanism) == (
        Protocol.TRUSTEE,
        NoiseMechanism.CONTINUOUS_GAUSSIAN,
    )


def test_llv2_duchies_required_then_filled_in_config_order() -> None:
    config = kingdom_test_config(llv2__minimum_duchy_count=3)
    chosen = choose_duchies(config, Protocol.LLV2, edps(HMSS, HMSS), NOW)
    assert chosen == ("aggregator", "worker1", "worker2")
    two = kingdom_test_config()
    assert choose_duchies(two, Protocol.LLV2, edps(HMSS, HMSS), NOW) == ("aggregator", "worker1")
    assert choose_duchies(two, Protocol.LLV2, edps(HMSS, required=("duchies/worker2",)), NOW) == (
        "aggregator",
        "worker2",
    )


def test_inactive_required_duchy_fails_creation() -> None:
    config = kingdom_test_config()
    base = config.model_dump(mode="json")
    base["duchies"][2]["active_end_time"] = "2026-01-01T00:00:00Z"
    from cmms.kingdom.config import KingdomConfig

    ended = KingdomConfig.model_validate(base)
    with pytest.raises(StatusError) as raised:
        choose_duchies(ended, Protocol.LLV2, edps(HMSS, required=("worker2",)), NOW)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(StatusError):
        choose_duchies(ended, Protocol.HMSS, edps(HMSS, HMSS), NOW)


def test_hmss_requisitions_go_to_non_aggregators_by_id_parity() -> None:
    config = kingdom_test_config()
    assert preassigned_duchy(config, Protocol.HMSS, 10) == "worker1"
    assert preassigned_duchy(config, Protocol.HMSS, 11) == "worker2"
    assert preassigned_duchy(config, Protocol.LLV2, 11) is None


def test_ring_modulus_check_covers_hmss_only() -> None:
    config = kingdom_test_config(
        hmss__reach_and_frequency_ring_modulus=42, hmss__reach_ring_modulus=5
    )
    rf, reach = MeasurementType.REACH_AND_FREQUENCY, MeasurementType.REACH
    check_ring_modulus(config, Protocol.HMSS, rf, 10, 4)  # 42 > 1 + 40
    with pytest.raises(StatusError) as raised:
        check_ring_modulus(config, Protocol.HMSS, rf, 10, 5)  # 42 <= 1 + 50
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "maximum_frequency 10 over 5 data providers" in raised.value.message
    check_ring_modulus(config, Protocol.HMSS, reach, 1, 3)  # 5 > 1 + 3
    with pytest.raises(StatusError):
        check_ring_modulus(config, Protocol.HMSS, reach, 1, 4)
    # Other protocols have no ring.
    check_ring_modulus(config, Protocol.LLV2, rf, 100, 50)


@pytest.mark.parametrize("modulus", [1, 128, 2**31])
def test_the_reach_ring_modulus_must_be_a_prime_int32(modulus: int) -> None:
    with pytest.raises(ValueError, match="reach_ring_modulus"):
        kingdom_test_config(hmss__reach_ring_modulus=modulus)
    assert kingdom_test_config(hmss__reach_ring_modulus=2_147_483_647).hmss is not None
