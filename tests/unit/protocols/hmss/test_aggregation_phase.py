"""HMSS aggregation: §D.2/§D.3 known answers, validation errors and tamper detection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cmms.dp.parameters import PrivacyParams
from cmms.protocols.errors import (
    InvalidProtocolInputError,
    NoDataNorNoiseError,
    ProtocolIntegrityError,
)
from cmms.protocols.hmss.aggregation_phase import (
    AggregationPhaseRequest,
    ReachAndFrequencyResult,
    ReachResult,
    complete_reach_and_frequency_aggregation_phase,
    complete_reach_only_aggregation_phase,
)
from cmms.protocols.hmss.parameters import FrequencyVectorParams, NoiseConfig, NoiseMechanism

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[3] / "vectors" / "hmss_trustee_stages.json").read_text()
)
DG_NOISE = NoiseConfig(
    NoiseMechanism.DISCRETE_GAUSSIAN, PrivacyParams(1.0, 1.0), PrivacyParams(10.0, 1.0)
)


def _noise(spec: dict[str, Any] | None) -> NoiseConfig:
    if spec is None:
        return NoiseConfig()
    frequency = spec.get("frequency")
    return NoiseConfig(
        NoiseMechanism[spec["mechanism"]],
        PrivacyParams(*spec["reach"]),
        PrivacyParams(*frequency) if frequency else None,
    )


def _request(case: dict[str, Any]) -> AggregationPhaseRequest:
    return AggregationPhaseRequest(
        params=FrequencyVectorParams(case["n"], case["max_combined"], case["q"]),
        share_vectors=tuple(np.array(s) for s in case["shares"]),
        vid_sampling_interval_width=case["width"],
        maximum_frequency=case["mf"],
        noise=_noise(case["noise"]),
    )


@pytest.mark.parametrize("case", VECTORS["hmss_aggregation"], ids=lambda c: c["name"])
def test_known_answers(case: dict[str, Any]) -> None:
    request = _request(case)
    if case["type"] == "REACH":
        assert complete_reach_only_aggregation_phase(request) == ReachResult(case["reach"])
    else:
        expected = {int(k): v for k, v in case["distribution"].items()}
        result = complete_reach_and_frequency_aggregation_phase(request)
        assert result == ReachAndFrequencyResult(case["reach"], expected)


def _rf(
    first: list[int], second: list[int], n: int, noise: NoiseConfig = DG_NOISE
) -> ReachAndFrequencyResult:
    return complete_reach_and_frequency_aggregation_phase(
        AggregationPhaseRequest(
            FrequencyVectorParams(n, 4, 8),
            (np.array(first), np.array(second)),
            0.5,
            maximum_frequency=2,
            noise=noise,
        )
    )


def test_neither_data_nor_effective_noise() -> None:
    first = [1, 2, 3, 4, 0, 3, 4, 3, 6, 1, 7, 4, 3]
    second = [7, 6, 5, 4, 0, 5, 4, 5, 2, 7, 3, 6, 7]
    with pytest.raises(NoDataNorNoiseError, match="data nor effective noise"):
        _rf(first, second, 4)


def test_out_of_range_combined_value_is_an_integrity_error() -> None:
    with pytest.raises(ProtocolIntegrityError, match="5"):
        _rf([0], [5], 1, NoiseConfig())


def test_sentinel_is_accepted_and_ignored() -> None:
    # 7 = q - 1 is the sentinel of unused noise slots; it is neither data nor an error.
    result = _rf([1, 0, 7], [0, 0, 0], 2, NoiseConfig())
    assert result == ReachAndFrequencyResult(2, {1: 1.0})


@pytest.mark.parametrize(
    ("first", "second", "match"),
    [([1, 2], [1], "lengths differ"), ([1, 8], [1, 1], "8"), ([1, 2], [1, -1], "-1")],
)
def test_bad_share_vectors(first: list[int], second: list[int], match: str) -> None:
    with pytest.raises(InvalidProtocolInputError, match=match):
        _rf(first, second, 1, NoiseConfig())


def test_exactly_two_shares() -> None:
    request = AggregationPhaseRequest(FrequencyVectorParams(1, 4, 8), (np.array([1]),), 1.0)
    with pytest.raises(InvalidProtocolInputError, match="exactly 2"):
        complete_reach_only_aggregation_phase(request)


@pytest.mark.parametrize("width", [0.0, -0.5, 1.1])
def test_bad_width(width: float) -> None:
    request = AggregationPhaseRequest(
        FrequencyVectorParams(1, 4, 8), (np.array([1]), np.array([0])), width
    )
    with pytest.raises(InvalidProtocolInputError, match="width"):
        complete_reach_only_aggregation_phase(request)


def test_float32_width_truncation() -> None:
    # 10 / float32(0.1) = 99.9999985..., which truncates to 99 (pitfall 8).
    ones = np.ones(10, dtype=np.uint8)
    request = AggregationPhaseRequest(
        FrequencyVectorParams(10, 4, 8), (ones, np.zeros(10, dtype=np.uint8)), 0.1
    )
    assert complete_reach_only_aggregation_phase(request).reach == 99


@pytest.mark.parametrize(
    ("n", "max_combined", "q", "match"),
    [(0, 4, 8, "register count"), (1, 4, 1, "at least 2"), (1, 4, 5, "plus one")],
)
def test_bad_frequency_vector_params(n: int, max_combined: int, q: int, match: str) -> None:
    with pytest.raises(InvalidProtocolInputError, match=match):
        FrequencyVectorParams(n, max_combined, q)


def test_noise_config_rules() -> None:
    with pytest.raises(InvalidProtocolInputError, match="NONE takes no DP params"):
        NoiseConfig(NoiseMechanism.NONE, PrivacyParams(1, 0.1))
    with pytest.raises(InvalidProtocolInputError, match="needs reach DP params"):
        NoiseConfig(NoiseMechanism.GEOMETRIC)
    with pytest.raises(InvalidProtocolInputError, match="CONTINUOUS_GAUSSIAN"):
        NoiseConfig(NoiseMechanism.CONTINUOUS_GAUSSIAN, PrivacyParams(1, 0.1))
    reach_only = NoiseConfig(NoiseMechanism.GEOMETRIC, PrivacyParams(1, 0.1))
    with pytest.raises(InvalidProtocolInputError, match="frequency DP params"):
        _rf([1], [0], 1, reach_only)
