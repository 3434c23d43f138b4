"""HMSS blind-histogram noise registers (spec §A.3 "Noise parameters", pitfall 5).

Each worker is one of two contributors. It draws private components from the injected
`RandomSource` and turns them into registers: for R&F `c0` zeros, then `c_k` copies of each
k = 1..maxCombined, padded with the sentinel `q - 1` to `T = 2·off_r + 2·off_f·maxCombined`; for
reach-only `c0` random non-zero values then zeros, `T = 2·off_r`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmms.crypto.prng import SEED_LENGTH, AesCtrPrng
from cmms.crypto.randomness import RandomSource
from cmms.crypto.ring import ring_dtype
from cmms.dp.parameters import (
    DiscreteGaussianNoiseParams,
    GeometricNoiseParams,
    PrivacyParams,
    discrete_gaussian_params,
    geometric_params,
)
from cmms.dp.samplers import discrete_gaussian_components, geometric_components
from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.hmss.parameters import NoiseMechanism

WORKER_COUNT = 2
GEOMETRIC_SENSITIVITY = 2


@dataclass(frozen=True)
class BlindHistogramNoiser:
    """One worker's noise for one histogram quantity; components lie in `[0, 2·offset]`."""

    params: GeometricNoiseParams | DiscreteGaussianNoiseParams

    @property
    def offset(self) -> int:
        return self.params.offset

    @property
    def baseline(self) -> int:
        """What both workers' components add up to on average, `2·offset`."""
        return WORKER_COUNT * self.params.offset

    @property
    def variance(self) -> float:
        """The approximate variance of the sum of both workers' components (ignores truncation)."""
        if isinstance(self.params, GeometricNoiseParams):
            p = self.params.p
            return 2 * p / (1 - p) ** 2
        return WORKER_COUNT * self.params.sigma_d**2

    def components(self, source: RandomSource, size: int) -> np.ndarray:
        if isinstance(self.params, GeometricNoiseParams):
            return geometric_components(self.params, source, size)
        return discrete_gaussian_components(self.params, source, size)


def blind_histogram_noiser(
    privacy: PrivacyParams, mechanism: NoiseMechanism
) -> BlindHistogramNoiser:
    """The reference's `GetBlindHistogramNoiser(params, 2, mechanism)`."""
    if mechanism is NoiseMechanism.GEOMETRIC:
        return BlindHistogramNoiser(geometric_params(privacy, WORKER_COUNT, GEOMETRIC_SENSITIVITY))
    if mechanism is NoiseMechanism.DISCRETE_GAUSSIAN:
        return BlindHistogramNoiser(discrete_gaussian_params(privacy, WORKER_COUNT))
    raise InvalidProtocolInputError(f"no blind histogram noise for mechanism {mechanism.name}")


def reach_and_frequency_noise_length(
    reach: BlindHistogramNoiser, frequency: BlindHistogramNoiser, maximum_combined_frequency: int
) -> int:
    """`T = 2·off_r + 2·off_f·maxCombined`."""
    return reach.baseline + frequency.baseline * maximum_combined_frequency


def reach_and_frequency_noise(
    reach: BlindHistogramNoiser,
    frequency: BlindHistogramNoiser,
    maximum_combined_frequency: int,
    ring_modulus: int,
    source: RandomSource,
) -> np.ndarray:
    """`c0` zeros, `c_k` copies of k for k = 1..maxCombined, sentinel `q-1` in the rest."""
    length = reach_and_frequency_noise_length(reach, frequency, maximum_combined_frequency)
    counts = np.concatenate(
        [
            reach.components(source, 1),
            frequency.components(source, maximum_combined_frequency),
        ]
    )
    values = np.arange(maximum_combined_frequency + 1)
    noise = np.full(length, ring_modulus - 1, dtype=ring_dtype(ring_modulus))
    filled = int(counts.sum())
    noise[:filled] = np.repeat(values, counts)
    return noise


def reach_only_noise(
    reach: BlindHistogramNoiser, ring_modulus: int, source: RandomSource
) -> np.ndarray:
    """`c0` random non-zero values (from a PRNG keyed privately), then zeros; length `2·off_r`."""
    count = int(reach.components(source, 1)[0])
    noise = np.zeros(reach.baseline, dtype=ring_dtype(ring_modulus))
    private = AesCtrPrng(source.randbytes(SEED_LENGTH))
    noise[:count] = private.nonzero_uniform_range(count, ring_modulus)
    return noise
