"""Distributed noise samplers: exact truncated moments, pmf fit, and the sum of contributors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cmms.crypto.randomness import SeededRandomSource
from cmms.dp import (
    DiscreteGaussianNoiseParams,
    GeometricNoiseParams,
    NoiseSamplingError,
    PrivacyParams,
    discrete_gaussian_component,
    discrete_gaussian_components,
    discrete_gaussian_params,
    geometric_component,
    geometric_components,
    geometric_params,
)

DRAWS = 20_000


def _moments(support: np.ndarray, pmf: np.ndarray) -> tuple[float, float, float]:
    mean = float(np.dot(support, pmf))
    centred = support - mean
    return mean, float(np.dot(centred**2, pmf)), float(np.dot(centred**4, pmf))


def _assert_moments_within_5_sigma(
    samples: np.ndarray, support: np.ndarray, pmf: np.ndarray
) -> None:
    mean, variance, fourth = _moments(support, pmf)
    n = samples.size
    assert abs(samples.mean() - mean) < 5 * math.sqrt(variance / n)
    assert abs(samples.var() - variance) < 5 * math.sqrt((fourth - variance**2) / n)


def _chi_square_pvalue(samples: np.ndarray, support: np.ndarray, pmf: np.ndarray) -> float:
    """Chi-square fit; cells with an expected count below 5 are pooled into one tail cell."""
    expected = pmf / pmf.sum() * samples.size
    observed = np.array([np.count_nonzero(samples == value) for value in support], dtype=float)
    assert observed.sum() == samples.size, "samples outside the support"
    big = expected >= 5
    cells_observed = np.append(observed[big], observed[~big].sum())
    cells_expected = np.append(expected[big], expected[~big].sum())
    if cells_expected[-1] == 0:
        cells_observed, cells_expected = cells_observed[:-1], cells_expected[:-1]
    return float(stats.chisquare(cells_observed, cells_expected).pvalue)


def _truncated_polya_pmf(params: GeometricNoiseParams) -> np.ndarray:
    k = np.arange(params.offset + 1)
    pmf = stats.nbinom.pmf(k, 1.0 / params.contributors, 1.0 - params.p)
    return pmf / pmf.sum()


def _geometric_component_pmf(params: GeometricNoiseParams) -> tuple[np.ndarray, np.ndarray]:
    polya = _truncated_polya_pmf(params)
    return np.arange(2 * params.offset + 1), np.convolve(polya, polya[::-1])


def _discrete_gaussian_component_pmf(
    params: DiscreteGaussianNoiseParams,
) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(-params.offset, params.offset + 1)
    pmf = np.exp(-(y.astype(float) ** 2) / (2 * params.sigma_d**2))
    return y + params.offset, pmf / pmf.sum()


@pytest.mark.parametrize(
    "params",
    [
        geometric_params(PrivacyParams(1.0, 0.1), contributors=2, sensitivity=2),
        # Heavy truncation: the Polya mean 4.5 is close to the threshold 5.
        GeometricNoiseParams(p=0.9, offset=5, contributors=2),
        GeometricNoiseParams(p=0.8, offset=30, contributors=3),
    ],
)
def test_geometric_component_matches_truncated_distribution(params: GeometricNoiseParams) -> None:
    samples = geometric_components(params, SeededRandomSource(f"geo{params}"), DRAWS)
    support, pmf = _geometric_component_pmf(params)
    assert samples.min() >= 0 and samples.max() <= 2 * params.offset
    _assert_moments_within_5_sigma(samples, support, pmf)
    assert _chi_square_pvalue(samples, support, pmf) > 1e-6


def test_sum_of_geometric_components_is_two_sided_geometric() -> None:
    params = geometric_params(PrivacyParams(1.0, 1e-9), contributors=2, sensitivity=2)
    source = SeededRandomSource("geo-sum")
    total = sum(geometric_components(params, source.derive(str(i)), DRAWS) for i in range(2))
    noise = total - 2 * params.offset
    p = params.p
    k = np.arange(-2 * params.offset, 2 * params.offset + 1)
    target = (1 - p) / (1 + p) * p ** np.abs(k)
    _assert_moments_within_5_sigma(noise, k, target / target.sum())
    assert noise.var() == pytest.approx(2 * p / (1 - p) ** 2, rel=0.1)
    assert _chi_square_pvalue(noise, k, target) > 1e-6


def test_polya_exhaustion_is_a_retryable_error() -> None:
    # P(Polya draw <= 0) = 0.001 here, so 20 attempts practically never succeed.
    params = GeometricNoiseParams(p=0.999, offset=0, contributors=1)
    with pytest.raises(NoiseSamplingError) as raised:
        geometric_components(params, SeededRandomSource("exhaust"), 10)
    assert raised.value.retryable


def test_negligible_p_gives_exactly_the_offset() -> None:
    params = geometric_params(PrivacyParams(40.0, math.exp(-80)), contributors=3, sensitivity=1)
    assert params.offset == 4
    assert set(geometric_components(params, SeededRandomSource(1), 500).tolist()) == {4}
    assert geometric_component(params, SeededRandomSource(2)) == 4


@pytest.mark.parametrize(
    "params",
    [
        discrete_gaussian_params(PrivacyParams(1.0, 0.1), contributors=2),
        discrete_gaussian_params(PrivacyParams(1.0, 1.0), contributors=2),
        DiscreteGaussianNoiseParams(sigma_d=4.0, offset=5, contributors=2),
        discrete_gaussian_params(PrivacyParams(0.1, 0.1), contributors=2),
    ],
)
def test_discrete_gaussian_component_matches_truncated_distribution(
    params: DiscreteGaussianNoiseParams,
) -> None:
    samples = discrete_gaussian_components(params, SeededRandomSource(f"dg{params}"), DRAWS)
    support, pmf = _discrete_gaussian_component_pmf(params)
    assert samples.min() >= 0 and samples.max() <= 2 * params.offset
    _assert_moments_within_5_sigma(samples, support, pmf)
    assert _chi_square_pvalue(samples, support, pmf) > 1e-6


def test_sum_of_discrete_gaussian_components_has_the_target_sigma() -> None:
    privacy = PrivacyParams(0.1, 0.1)
    contributors = 3
    params = discrete_gaussian_params(privacy, contributors)
    source = SeededRandomSource("dg-sum")
    total = sum(
        discrete_gaussian_components(params, source.derive(str(i)), DRAWS)
        for i in range(contributors)
    )
    noise = total - contributors * params.offset
    _, component_pmf = _discrete_gaussian_component_pmf(params)
    pmf = component_pmf
    for _ in range(contributors - 1):
        pmf = np.convolve(pmf, component_pmf)
    k = np.arange(pmf.size) - contributors * params.offset
    _assert_moments_within_5_sigma(noise, k, pmf)
    assert _chi_square_pvalue(noise, k, pmf) > 1e-6
    # The total behaves like one discrete Gaussian with the full sigma = sqrt(2 ln(1.25/(δ/2)))/ε.
    sigma = math.sqrt(2 * math.log(1.25 / (privacy.delta / 2))) / privacy.epsilon
    target = np.exp(-(k.astype(float) ** 2) / (2 * sigma**2))
    _assert_moments_within_5_sigma(noise, k, target / target.sum())


def test_seeded_sources_replay_and_single_draws_are_in_range() -> None:
    params = discrete_gaussian_params(PrivacyParams(1.0, 0.1), contributors=2)
    first = discrete_gaussian_components(params, SeededRandomSource(5), 50)
    assert np.array_equal(first, discrete_gaussian_components(params, SeededRandomSource(5), 50))
    assert 0 <= discrete_gaussian_component(params, SeededRandomSource(6)) <= 2 * params.offset
