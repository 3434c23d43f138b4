"""One contributor's share of distributed DP noise (llv2.md §6.3, hmss_trustee.md §A.3).

Randomness comes from an injected `RandomSource`: each call seeds a numpy generator with 256
fresh bits from it, so seeded sources replay and the system source gives fresh noise. Sampling is
vectorised over `size` independent components.
"""

from __future__ import annotations

import math

import numpy as np

from cmms.crypto.randomness import RandomSource
from cmms.dp.errors import NoiseParameterError, NoiseSamplingError
from cmms.dp.parameters import DiscreteGaussianNoiseParams, GeometricNoiseParams

MAX_POLYA_ATTEMPTS = 20


def numpy_generator(source: RandomSource) -> np.random.Generator:
    """A numpy generator seeded with 256 bits drawn from `source`."""
    seed = int.from_bytes(source.randbytes(32), "big")
    return np.random.Generator(np.random.PCG64DXSM(np.random.SeedSequence(seed)))


def geometric_components(
    params: GeometricNoiseParams, source: RandomSource, size: int
) -> np.ndarray:
    """`size` components `offset + X1 - X2`, each X a truncated Polya draw; values in [0, 2·offset].

    X is `Poisson(Gamma(shape=1/contributors, scale=p/(1-p)))`, redrawn while above the offset; a
    draw still above it after `MAX_POLYA_ATTEMPTS` tries raises the retryable
    `NoiseSamplingError`. The components of all contributors sum to `contributors·offset` plus
    two-sided geometric noise with `P(k) ∝ p^|k|` (up to truncation).
    """
    _check_size(size)
    generator = numpy_generator(source)
    first = _truncated_polya(params, generator, size)
    second = _truncated_polya(params, generator, size)
    components: np.ndarray = params.offset + first - second
    return components


def geometric_component(params: GeometricNoiseParams, source: RandomSource) -> int:
    """One component of `geometric_components`."""
    return int(geometric_components(params, source, 1)[0])


def _truncated_polya(
    params: GeometricNoiseParams, generator: np.random.Generator, size: int
) -> np.ndarray:
    shape = 1.0 / params.contributors
    scale = params.p / (1.0 - params.p)
    values = np.empty(size, dtype=np.int64)
    pending = np.arange(size)
    for _ in range(MAX_POLYA_ATTEMPTS):
        if pending.size == 0:
            return values
        rates = generator.gamma(shape, scale, pending.size) if scale > 0 else np.zeros(pending.size)
        draws = generator.poisson(rates)
        accepted = draws <= params.truncation_threshold
        values[pending[accepted]] = draws[accepted]
        pending = pending[~accepted]
    if pending.size:
        raise NoiseSamplingError(
            f"truncated Polya draw exceeded {params.truncation_threshold} "
            f"{MAX_POLYA_ATTEMPTS} times in a row (p={params.p}); retry the stage"
        )
    return values


def discrete_gaussian_components(
    params: DiscreteGaussianNoiseParams, source: RandomSource, size: int
) -> np.ndarray:
    """`size` components `offset + y`, y a discrete Gaussian(sigma_d) truncated to `|y| <= offset`.

    Canonne-Kamath-Steinke rejection from a discrete Laplace: `t = floor(sigma_d) + 1`,
    `y = G1 - G2` with G geometric (failures, success probability `1 - e^(-1/t)`), accepted with
    probability `exp(-(|y| - sigma_d²/t)² / (2sigma_d²))` and only if `|y| <= offset`.
    """
    _check_size(size)
    sigma = params.sigma_d
    generator = numpy_generator(source)
    t = math.floor(sigma) + 1
    success = -math.expm1(-1.0 / t)
    out = np.empty(size, dtype=np.int64)
    filled = 0
    while filled < size:
        # Acceptance is at least ~1/3 for t = floor(sigma)+1, so a 4x batch rarely needs a second round.
        batch = 4 * (size - filled) + 16
        y = generator.geometric(success, batch) - generator.geometric(success, batch)
        magnitude = np.abs(y)
        keep_probability = np.exp(-((magnitude - sigma * sigma / t) ** 2) / (2 * sigma * sigma))
        accepted = y[(generator.random(batch) < keep_probability) & (magnitude <= params.offset)]
        accepted = accepted[: size - filled]
        out[filled : filled + accepted.size] = accepted
        filled += accepted.size
    return params.offset + out


def discrete_gaussian_component(params: DiscreteGaussianNoiseParams, source: RandomSource) -> int:
    """One component of `discrete_gaussian_components`."""
    return int(discrete_gaussian_components(params, source, 1)[0])


def _check_size(size: int) -> None:
    if size < 0:
        raise NoiseParameterError(f"sample size must be non-negative, got {size}")
