"""TrusTee's continuous-Gaussian result noiser (hmss_trustee.md §B.4).

sigma is the analytic Gaussian calibration of Balle and Wang (2018) for L2 sensitivity
`sqrt(l0)·l_inf`, found by doubling and then bisection to 0.1% relative accuracy, keeping the
upper (safe) end. The noise is a continuous normal draw rounded half to even; the reference's
library approximates the same normal with a binomial, which this does not reproduce bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from cmms.crypto.randomness import RandomSource
from cmms.dp.errors import NoiseParameterError
from cmms.dp.parameters import PrivacyParams
from cmms.dp.samplers import numpy_generator

SIGMA_RELATIVE_ACCURACY = 1e-3


def analytic_gaussian_delta(sigma: float, epsilon: float, l2_sensitivity: float) -> float:
    """The smallest δ for which N(0, sigma²) noise is (ε, δ)-DP at this L2 sensitivity."""
    # Imported here: SciPy costs every process that imports the DP package about 0.2 s of CPU
    # at start-up (every duchy server and mill job), and only TrusTee's noiser needs it.
    from scipy.special import ndtr

    a = l2_sensitivity / (2 * sigma)
    b = epsilon * sigma / l2_sensitivity
    return float(ndtr(a - b) - math.exp(epsilon) * ndtr(-a - b))


def analytic_gaussian_sigma(privacy: PrivacyParams, l2_sensitivity: float) -> float:
    """A sigma within 0.1% above the smallest one meeting `privacy` at this L2 sensitivity."""
    if not l2_sensitivity > 0:
        raise NoiseParameterError(f"L2 sensitivity must be positive, got {l2_sensitivity}")
    epsilon, delta = privacy.epsilon, privacy.delta
    lower, upper = 0.0, float(l2_sensitivity)
    while analytic_gaussian_delta(upper, epsilon, l2_sensitivity) > delta:
        lower, upper = upper, 2 * upper
    while upper - lower > SIGMA_RELATIVE_ACCURACY * lower:
        middle = 0.5 * (lower + upper)
        if analytic_gaussian_delta(middle, epsilon, l2_sensitivity) > delta:
            lower = middle
        else:
            upper = middle
    return upper


class GaussianResultNoiser:
    """Rounded Gaussian noise: reach and impressions use the reach budget, buckets the frequency
    budget; impressions are capped at `max_frequency_per_user` per register."""

    def __init__(
        self,
        reach_privacy: PrivacyParams,
        frequency_privacy: PrivacyParams | None,
        max_frequency_per_user: int,
        source: RandomSource,
    ) -> None:
        if max_frequency_per_user < 1:
            raise NoiseParameterError(
                f"max frequency per user must be at least 1, got {max_frequency_per_user}"
            )
        self._generator = numpy_generator(source)
        self._max_frequency_per_user = max_frequency_per_user
        self.reach_sigma = analytic_gaussian_sigma(reach_privacy, 1.0)
        self.impressions_sigma = analytic_gaussian_sigma(
            reach_privacy, float(max_frequency_per_user)
        )
        self.frequency_sigma = (
            analytic_gaussian_sigma(frequency_privacy, 1.0) if frequency_privacy else None
        )

    def _draw(self, sigma: float) -> int:
        return round(float(self._generator.normal(0.0, sigma)))

    def noise_reach(self, reach: int) -> int:
        return reach + self._draw(self.reach_sigma)

    def noise_impressions(self, histogram: Sequence[int]) -> int:
        capped = sum(
            min(self._max_frequency_per_user, frequency) * count
            for frequency, count in enumerate(histogram, start=1)
        )
        return capped + self._draw(self.impressions_sigma)

    def noise_frequency_bucket(self, bucket_index: int, count: int) -> int:
        if self.frequency_sigma is None:
            raise NoiseParameterError("frequency noise needs frequency privacy params")
        return max(0, count + self._draw(self.frequency_sigma))
