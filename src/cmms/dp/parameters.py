"""Noise parameters of the distributed DP mechanisms (llv2.md §6.2, hmss_trustee.md §A.3).

Each of `contributors` parties adds one component in `[0, 2·offset]`; the components sum to
`contributors·offset` plus (approximately, because of truncation) the target noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cmms.dp.errors import NoiseParameterError


@dataclass(frozen=True)
class PrivacyParams:
    """An (epsilon, delta) budget; `0 < epsilon < inf` and `0 < delta <= 1`."""

    epsilon: float
    delta: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.epsilon) and self.epsilon > 0):
            raise NoiseParameterError(f"epsilon must be positive and finite, got {self.epsilon}")
        if not 0 < self.delta <= 1:
            raise NoiseParameterError(f"delta must be in (0, 1], got {self.delta}")


@dataclass(frozen=True)
class GeometricNoiseParams:
    """Distributed two-sided geometric noise: success ratio `p`, shift = truncation `offset`."""

    p: float
    offset: int
    contributors: int

    def __post_init__(self) -> None:
        if not 0 <= self.p < 1:
            raise NoiseParameterError(f"geometric p must be in [0, 1), got {self.p}")
        _check_shape(self.offset, self.contributors)

    @property
    def truncation_threshold(self) -> int:
        """Each Polya draw is resampled while it exceeds this (it equals the offset)."""
        return self.offset


@dataclass(frozen=True)
class DiscreteGaussianNoiseParams:
    """Distributed discrete Gaussian noise: per-contributor `sigma_d`, shift = truncation `offset`."""

    sigma_d: float
    offset: int
    contributors: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sigma_d) and self.sigma_d > 0):
            raise NoiseParameterError(f"sigma_d must be positive and finite, got {self.sigma_d}")
        _check_shape(self.offset, self.contributors)

    @property
    def truncation_threshold(self) -> int:
        """Draws with `|y|` above this are rejected (it equals the offset)."""
        return self.offset


def geometric_params(
    privacy: PrivacyParams, contributors: int, sensitivity: int
) -> GeometricNoiseParams:
    """`p = exp(-ε/s)`, `offset = ceil(ln(2·n·s·(1 + e^ε)/δ) / (ε/s))`."""
    _check_positive("contributors", contributors)
    _check_positive("sensitivity", sensitivity)
    epsilon, delta = privacy.epsilon, privacy.delta
    p = math.exp(-epsilon / sensitivity)
    offset = math.ceil(
        math.log(2 * contributors * sensitivity * (1 + math.exp(epsilon)) / delta)
        / (epsilon / sensitivity)
    )
    return GeometricNoiseParams(p=p, offset=offset, contributors=contributors)


def discrete_gaussian_params(
    privacy: PrivacyParams, contributors: int
) -> DiscreteGaussianNoiseParams:
    """`sigma = sqrt(2 ln(1.25/(δ/2)))/ε`, `sigma_d = sigma/sqrt(n)`, `offset = ceil(sigma_d·sqrt(2 ln(n(1+e^ε)/(δ/2))))`.

    The reference ignores the sensitivity for this mechanism, and so does this function.
    """
    _check_positive("contributors", contributors)
    epsilon, delta = privacy.epsilon, privacy.delta
    delta1 = delta2 = delta / 2
    sigma = math.sqrt(2 * math.log(1.25 / delta1)) / epsilon
    sigma_d = sigma / math.sqrt(contributors)
    offset = math.ceil(
        sigma_d * math.sqrt(2 * math.log(contributors * (1 + math.exp(epsilon)) / delta2))
    )
    return DiscreteGaussianNoiseParams(sigma_d=sigma_d, offset=offset, contributors=contributors)


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise NoiseParameterError(f"{name} must be at least 1, got {value}")


def _check_shape(offset: int, contributors: int) -> None:
    if offset < 0:
        raise NoiseParameterError(f"offset must be non-negative, got {offset}")
    _check_positive("contributors", contributors)
