"""TrusTee noise: DTL known answers (§D.6) and the analytic-Gaussian result noiser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cmms.crypto.randomness import SeededRandomSource
from cmms.dp import (
    DeterministicTruncatedLaplaceNoiser,
    GaussianResultNoiser,
    NoiseParameterError,
    PrivacyParams,
    RawResultNoiser,
    TruncatedLaplace,
    analytic_gaussian_sigma,
    deterministic_uniform,
)
from cmms.dp.gaussian import analytic_gaussian_delta

DTL: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "dp_noise.json").read_text()
)["dtl"]


def test_deterministic_uniform() -> None:
    assert deterministic_uniform(b"x") == DTL["uniform_x"]


@pytest.mark.parametrize(("u", "expected"), DTL["inverse_cdf_scale1_bound8"])
def test_truncated_laplace_inverse_cdf(u: float, expected: float) -> None:
    assert TruncatedLaplace(1.0, 8.0).inverse_cdf(u) == pytest.approx(expected, abs=1e-15)


def test_sampler_draws() -> None:
    parts = [part.encode() for part in DTL["sampler_parts"]]
    laplace = TruncatedLaplace(1.0, 8.0)
    assert laplace.inverse_cdf(deterministic_uniform(*parts)) == DTL["sampler_continuous"]
    assert laplace.sample(*parts) == DTL["sampler_rounded"]
    for sensitivity, rounded in DTL["for_dp_eps1_delta0001"]:
        assert TruncatedLaplace.for_differential_privacy(1, 0.001, sensitivity).sample(*parts) == (
            rounded
        )
    for sensitivity, bound in DTL["bounds"]:
        assert TruncatedLaplace.for_differential_privacy(1, 0.001, sensitivity).bound == (
            pytest.approx(bound, abs=1e-3)
        )


def test_result_noiser_known_answers() -> None:
    case = DTL["noiser"]
    noiser = DeterministicTruncatedLaplaceNoiser(
        case["combined"], case["count"], case["max_frequency_per_user"]
    )
    assert noiser.fingerprint.hex() == case["fingerprint_hex"]
    assert noiser.noise_reach(case["reach"][0]) == case["reach"][1]
    for index, count, released in case["buckets"]:
        assert noiser.noise_frequency_bucket(index, count) == released
    assert noiser.noise_impressions(case["impressions_histogram"]) == case["impressions"]


def test_dtl_noise_is_bounded_and_depends_on_the_data() -> None:
    laplace = TruncatedLaplace.for_differential_privacy(1.0, 0.001, 1)
    draws = [laplace.sample(i.to_bytes(4, "big")) for i in range(3000)]
    assert max(abs(d) for d in draws) <= round(laplace.bound)
    assert abs(float(np.mean(draws))) < 5 * 1.5 / np.sqrt(3000)
    a = DeterministicTruncatedLaplaceNoiser([1, 0, 1], 1, 1).fingerprint
    b = DeterministicTruncatedLaplaceNoiser([1, 0, 1], 2, 1).fingerprint
    assert a != b
    with pytest.raises(NoiseParameterError):
        TruncatedLaplace.for_differential_privacy(0.0, 0.001, 1)


def test_analytic_gaussian_sigma() -> None:
    sigma = analytic_gaussian_sigma(PrivacyParams(1.0, 1e-5), 1.0)
    # Balle & Wang's calibration for (1, 1e-5) is about 3.73 (the classic bound gives 4.84).
    assert sigma == pytest.approx(3.73, abs=0.01)
    assert analytic_gaussian_delta(sigma, 1.0, 1.0) <= 1e-5
    assert analytic_gaussian_delta(sigma / 1.002, 1.0, 1.0) > 1e-5
    assert analytic_gaussian_sigma(PrivacyParams(1.0, 1e-5), 3.0) == pytest.approx(
        3 * sigma, rel=2e-3
    )


def test_gaussian_result_noiser() -> None:
    privacy = PrivacyParams(1.0, 1e-5)
    noiser = GaussianResultNoiser(privacy, privacy, 1, SeededRandomSource("gauss"))
    draws = np.array([noiser.noise_reach(1000) for _ in range(20_000)]) - 1000
    variance = noiser.reach_sigma**2 + 1 / 12  # rounding adds about 1/12
    assert abs(draws.mean()) < 5 * np.sqrt(variance / draws.size)
    assert draws.var() == pytest.approx(variance, rel=5 * np.sqrt(2 / draws.size))
    assert all(noiser.noise_frequency_bucket(0, 0) >= 0 for _ in range(100))
    reach_only = GaussianResultNoiser(privacy, None, 126, SeededRandomSource(1))
    assert reach_only.impressions_sigma == pytest.approx(126 * reach_only.reach_sigma, rel=2e-3)
    with pytest.raises(NoiseParameterError):
        reach_only.noise_frequency_bucket(0, 5)


def test_raw_noiser_passes_values_through() -> None:
    raw = RawResultNoiser()
    assert raw.noise_reach(-3) == -3
    assert raw.noise_frequency_bucket(2, 7) == 7
    assert raw.noise_impressions([10, 4, 1]) == 21
