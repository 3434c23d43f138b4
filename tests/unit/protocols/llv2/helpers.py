"""Shared builders for the LLv2 tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import nbinom

from cmms.dp import PrivacyParams
from cmms.protocols.liquid_legions.noise import NoiseConfig, NoiseMechanism, ReachNoiseConfig
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters
from cmms.sketch import LiquidLegionsSketch

DETERMINISTIC = PrivacyParams(40, math.exp(-80))
LOOSE = PrivacyParams(1, 1)


def sketch(registers: Sequence[Sequence[int]]) -> LiquidLegionsSketch:
    """A sketch of `(index, key, count)` rows; key -1 is "destroyed" (stored shifted by one)."""
    rows = np.array(registers, dtype=np.int64).reshape(-1, 3)
    return LiquidLegionsSketch(rows[:, 0].copy(), rows[:, 1] + 1, rows[:, 2].copy())


def parameters(
    max_frequency: int = 10,
    *,
    reach_noise: bool = False,
    frequency_noise: PrivacyParams | None = None,
    requisitions: int = 3,
    width: float = 0.5,
) -> ReachAndFrequencyParameters:
    noise = None
    if reach_noise or frequency_noise is not None:
        reach = ReachNoiseConfig(LOOSE, LOOSE, DETERMINISTIC) if reach_noise else None
        noise = NoiseConfig(NoiseMechanism.GEOMETRIC, reach, frequency_noise)
    return ReachAndFrequencyParameters(
        decay_rate=12,
        max_size=100_000,
        duchies=3,
        requisitions=requisitions,
        noise=noise,
        vid_sampling_width=width,
        max_frequency=max_frequency,
    )


def summed_geometric_noise_moments(
    offset: int, p: float, contributors: int
) -> tuple[float, float, float]:
    """Mean, variance and 4th central moment of `sum(components) - contributors·offset`.

    Each component is `Y1 - Y2`, Y a Polya (negative binomial, shape 1/contributors) draw
    conditioned on `Y <= offset`; computed exactly by convolution.
    """
    values = np.arange(offset + 1)
    polya = nbinom.pmf(values, 1 / contributors, 1 - p)
    polya /= polya.sum()
    component = np.convolve(polya, polya[::-1])  # Y1 - Y2 on -offset..offset
    total = np.array([1.0])
    for _ in range(contributors):
        total = np.convolve(total, component)
    support = np.arange(total.size) - contributors * offset
    mean = float((support * total).sum())
    variance = float(((support - mean) ** 2 * total).sum())
    fourth = float(((support - mean) ** 4 * total).sum())
    return mean, variance, fourth


def assert_moments_match(
    errors: Sequence[int], mean: float, variance: float, fourth: float
) -> None:
    """Sample mean and variance within 5 standard errors of the exact moments."""
    n = len(errors)
    sample = np.asarray(errors, dtype=float)
    assert abs(sample.mean() - mean) <= 5 * math.sqrt(variance / n)
    assert abs(sample.var(ddof=1) - variance) <= 5 * math.sqrt((fourth - variance**2) / n)
