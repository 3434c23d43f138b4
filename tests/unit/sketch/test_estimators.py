"""LL estimators (§5.7 known answers) and the HMSS / TrusTee result computations (§D)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cmms.crypto.sharing import add_mod
from cmms.dp import DeterministicTruncatedLaplaceNoiser, PrivacyParams, RawResultNoiser
from cmms.dp.parameters import discrete_gaussian_params
from cmms.sketch import (
    FrequencyVectorAggregator,
    InconsistentAggregateError,
    ResultThresholds,
    SketchParameterError,
    estimate_reach,
    estimate_reach_with_sampling,
    expected_active_registers,
    hmss_reach,
    hmss_reach_and_frequency,
    llv2_frequency_distribution,
    scale_sampled_reach,
    trustee_frequency_distribution,
    trustee_reach,
)

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "sketch_results.json").read_text()
)


@pytest.mark.parametrize("case", VECTORS["estimate_reach"])
def test_estimator_known_answers(case: dict[str, Any]) -> None:
    estimate = estimate_reach_with_sampling(case["a"], case["m"], case["active"], case["width"])
    assert estimate == case["reach"]
    if case["width"] == 1.0:
        assert estimate_reach(case["a"], case["m"], case["active"]) == case["reach"]


def test_estimator_round_trip_within_5_percent() -> None:
    for cardinality in range(1, 1_000_001, 50_000):
        active = expected_active_registers(10, 100_000, cardinality)
        assert abs(estimate_reach(10, 100_000, active) - cardinality) <= 0.05 * cardinality


def test_estimator_errors() -> None:
    with pytest.raises(SketchParameterError):
        estimate_reach(1.0, 100_000, 10)
    with pytest.raises(SketchParameterError):
        estimate_reach(12, 100, 100)
    with pytest.raises(SketchParameterError):
        estimate_reach(12, 100, -1)
    with pytest.raises(SketchParameterError):
        estimate_reach_with_sampling(12, 100_000, 10, 0.0)


def test_llv2_frequency_distribution() -> None:
    assert llv2_frequency_distribution([0, 2, 0, 0, 0, 0, 0, 0, 0, 1]) == {2: 2 / 3, 10: 1 / 3}
    assert llv2_frequency_distribution([9, 5, 11], noise_baseline=6) == {1: 0.375, 3: 0.625}
    with pytest.raises(InconsistentAggregateError):
        llv2_frequency_distribution([3, 2], noise_baseline=3)


def _baseline(case: dict[str, Any], key: str) -> int | None:
    return 2 * case[key] if key in case else None


@pytest.mark.parametrize("case", VECTORS["hmss_rf"], ids=lambda c: c["name"])
def test_hmss_reach_and_frequency(case: dict[str, Any]) -> None:
    combined = add_mod(case["share1"], case["share2"], case["q"])
    result = hmss_reach_and_frequency(
        combined,
        case["n"],
        case["mf"],
        case["max_combined"],
        case["q"],
        case["width"],
        _baseline(case, "reach_offset"),
        _baseline(case, "frequency_offset"),
    )
    assert result.reach == case["reach"]
    assert result.distribution == {int(k): v for k, v in case["distribution"].items()}


def test_hmss_noise_offsets_of_the_d2_cases() -> None:
    # "(ε, δ) = (10, 1)": reach (1, 1) and frequency (10, 1), discrete Gaussian, 2 workers.
    assert discrete_gaussian_params(PrivacyParams(1.0, 1.0), 2).offset == 3
    assert discrete_gaussian_params(PrivacyParams(10.0, 1.0), 2).offset == 1


@pytest.mark.parametrize("case", VECTORS["hmss_rf_errors"], ids=lambda c: c["name"])
def test_hmss_reach_and_frequency_errors(case: dict[str, Any]) -> None:
    combined = add_mod(case["share1"], case["share2"], case["q"])
    with pytest.raises(InconsistentAggregateError, match=case["message"]):
        hmss_reach_and_frequency(
            combined,
            case["n"],
            case["mf"],
            case["max_combined"],
            case["q"],
            case["width"],
            _baseline(case, "reach_offset"),
            _baseline(case, "frequency_offset"),
        )


def test_hmss_sentinel_is_accepted() -> None:
    combined = np.array([1, 2, 0, 7, 7])  # q - 1 = 7 is the noise sentinel
    result = hmss_reach_and_frequency(combined, 3, 2, 4, 8, 1.0)
    assert result.reach == 2


@pytest.mark.parametrize("case", VECTORS["hmss_reach"])
def test_hmss_reach_only(case: dict[str, Any]) -> None:
    combined = add_mod(case["share1"], case["share2"], case["q"])
    reach = hmss_reach(combined, case["n"], case["width"], _baseline(case, "reach_offset"))
    assert reach == case["reach"]


@pytest.mark.parametrize(("count", "width", "reach"), VECTORS["scale_sampled_reach"])
def test_scale_sampled_reach(count: int, width: float, reach: int) -> None:
    assert scale_sampled_reach(count, width) == reach


@pytest.mark.parametrize(("count", "width"), [(-1, 0.5), (10, 0.0), (10, -0.5), (10, 1.1)])
def test_scale_sampled_reach_errors(count: int, width: float) -> None:
    with pytest.raises(SketchParameterError):
        scale_sampled_reach(count, width)


@pytest.mark.parametrize("case", VECTORS["trustee"])
def test_trustee_results(case: dict[str, Any]) -> None:
    vectors = [[1] * 100 if v == "100 ones" else v for v in case["vectors"]]
    aggregator = FrequencyVectorAggregator(case["mf"], case["width"])
    for vector in vectors:
        aggregator.add(np.array(vector))
    histogram = aggregator.histogram()
    thresholds = ResultThresholds(*case["thresholds"]) if "thresholds" in case else None
    noiser = RawResultNoiser()
    assert (
        trustee_reach(histogram, len(vectors[0]), case["width"], noiser, thresholds)
        == (case["reach"])
    )
    if "distribution" in case:
        distribution = trustee_frequency_distribution(histogram, case["width"], noiser)
        assert distribution == {int(k): v for k, v in case["distribution"].items()}


def test_trustee_capping_and_input_checks() -> None:
    case = VECTORS["trustee_capping"]
    aggregator = FrequencyVectorAggregator(case["mf"], 1.0)
    for vector in case["vectors"]:
        aggregator.add(np.array(vector))
    assert aggregator.aggregate.tolist() == case["aggregate"]
    assert aggregator.contributions == 3
    assert aggregator.add(bytes([1, 0, 0, 0]))
    with pytest.raises(SketchParameterError, match="negative"):
        aggregator.add(bytes([0xFF, 0, 0, 0]))
    with pytest.raises(SketchParameterError):
        aggregator.add(np.array([1, 2]))
    with pytest.raises(SketchParameterError, match="Invalid max frequency"):
        FrequencyVectorAggregator(0, 1.0)
    with pytest.raises(SketchParameterError, match="Invalid vid sampling interval width"):
        FrequencyVectorAggregator(3, 1.1)
    with pytest.raises(SketchParameterError, match="Invalid vid sampling interval width"):
        FrequencyVectorAggregator(3, -0.2)
    with pytest.raises(SketchParameterError):
        _ = FrequencyVectorAggregator(3, 1.0).aggregate


def test_trustee_drop_rule_and_threshold_folding() -> None:
    aggregator = FrequencyVectorAggregator(3, 1.0, drop_below_min_users=3)
    assert not aggregator.add(np.array([1, 0, 0, 1]))
    assert aggregator.add(np.array([1, 1, 1, 0]))
    assert aggregator.contributions == 1
    # Bucket 3 (1 user) is below min_users = 2 and folds into bucket 2.
    folded = trustee_frequency_distribution(
        [4, 2, 1], 1.0, RawResultNoiser(), ResultThresholds(min_impressions=1, min_users=2)
    )
    assert folded == {1: 4 / 7, 2: 3 / 7, 3: 0.0}


def test_trustee_with_deterministic_laplace() -> None:
    aggregator = FrequencyVectorAggregator(3, 1.0)
    aggregator.add(np.array([0, 1, 2, 1, 3, 0, 2]))
    noiser = DeterministicTruncatedLaplaceNoiser(aggregator.aggregate, 1, 1)
    histogram = aggregator.histogram()
    reach = trustee_reach(histogram, 7, 1.0, noiser)
    assert reach == noiser.noise_reach(5)
    assert abs(reach - 5) <= 7
