"""TrusTee's deterministic truncated Laplace (DTL) noise (hmss_trustee.md §B.4).

The noise is a pure function of the aggregated data: a SHA-256 fingerprint of the combined
frequency vector and a per-value label pick a uniform in [0, 1), which is mapped through the
inverse CDF of a Laplace distribution truncated to [-bound, bound] and rounded half-to-even.
Repeating a query therefore returns the same noise.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cmms.dp.errors import NoiseParameterError

DTL_EPSILON = 1.0
DTL_DELTA = 0.001
REACH_LABEL = 0
IMPRESSIONS_LABEL = -1


def deterministic_uniform(*parts: bytes) -> float:
    """A uniform in [0, 1) from SHA-256 over each part prefixed by its BE32 length."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(4, "big") + part)
    return (int.from_bytes(digest.digest()[:8], "big") >> 11) / float(1 << 53)


@dataclass(frozen=True)
class TruncatedLaplace:
    """A Laplace(0, `scale`) distribution conditioned on `[-bound, bound]`."""

    scale: float
    bound: float

    def __post_init__(self) -> None:
        if not self.scale > 0 or not self.bound > 0:
            raise NoiseParameterError(
                f"scale and bound must be positive, got {self.scale}, {self.bound}"
            )

    @classmethod
    def for_differential_privacy(
        cls, epsilon: float, delta: float, sensitivity: float
    ) -> TruncatedLaplace:
        """`scale = s/ε`, `bound = (s/ε)·ln(1 + (e^ε - 1)/(2δ))`."""
        if not epsilon > 0 or not 0 < delta < 1 or not sensitivity > 0:
            raise NoiseParameterError(
                f"need epsilon > 0, 0 < delta < 1, sensitivity > 0; got {epsilon}, {delta}, "
                f"{sensitivity}"
            )
        scale = sensitivity / epsilon
        return cls(scale, scale * math.log(1 + math.expm1(epsilon) / (2 * delta)))

    def _cdf(self, x: float) -> float:
        if x < 0:
            return 0.5 * math.exp(x / self.scale)
        return 1 - 0.5 * math.exp(-x / self.scale)

    def inverse_cdf(self, u: float) -> float:
        """The value at quantile `u` in [0, 1] of the truncated distribution."""
        low, high = self._cdf(-self.bound), self._cdf(self.bound)
        p = low + u * (high - low)
        if p < 0.5:
            return self.scale * math.log(2 * p)
        return -self.scale * math.log(2 * (1 - p))

    def sample(self, *parts: bytes) -> int:
        """The draw keyed by `parts`, rounded half to even."""
        return round(self.inverse_cdf(deterministic_uniform(*parts)))


def frequency_vector_fingerprint(combined: np.ndarray | Sequence[int], contributions: int) -> bytes:
    """SHA-256 of `BE32(contributions) || BE32(combined[0]) || ...`."""
    values = np.asarray(combined, dtype=np.int64)
    if values.size and (values.min() < -(2**31) or values.max() >= 2**31):
        raise NoiseParameterError("frequency vector values must fit in a signed 32-bit integer")
    header = contributions.to_bytes(4, "big", signed=True)
    return hashlib.sha256(header + values.astype(">i4").tobytes()).digest()


class DeterministicTruncatedLaplaceNoiser:
    """TrusTee's DTL result noiser for one combined frequency vector (ε = 1, δ = 0.001)."""

    def __init__(
        self,
        combined: np.ndarray | Sequence[int],
        contributions: int,
        max_frequency_per_user: int,
        epsilon: float = DTL_EPSILON,
        delta: float = DTL_DELTA,
    ) -> None:
        self.fingerprint = frequency_vector_fingerprint(combined, contributions)
        self._max_frequency_per_user = max_frequency_per_user
        self._unit = TruncatedLaplace.for_differential_privacy(epsilon, delta, 1)
        self._impressions = TruncatedLaplace.for_differential_privacy(
            epsilon, delta, max_frequency_per_user
        )

    def _draw(self, distribution: TruncatedLaplace, label: int) -> int:
        return distribution.sample(self.fingerprint, label.to_bytes(4, "big", signed=True))

    def noise_reach(self, reach: int) -> int:
        """`reach + draw` (label 0); may be negative."""
        return reach + self._draw(self._unit, REACH_LABEL)

    def noise_frequency_bucket(self, bucket_index: int, count: int) -> int:
        """`max(0, count + draw)` for 0-based `bucket_index` (label = frequency = index + 1)."""
        return max(0, count + self._draw(self._unit, bucket_index + 1))

    def noise_impressions(self, histogram: Sequence[int]) -> int:
        """`Σ_f min(max_frequency_per_user, f)·histogram[f-1] + draw` (label -1)."""
        capped = sum(
            min(self._max_frequency_per_user, frequency) * count
            for frequency, count in enumerate(histogram, start=1)
        )
        return capped + self._draw(self._impressions, IMPRESSIONS_LABEL)
