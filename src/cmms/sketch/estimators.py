"""Liquid Legions cardinality and frequency estimators (llv2.md §5.4, §5.7)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cmms.sketch.errors import InconsistentAggregateError, SketchParameterError


def expected_active_registers(decay_rate: float, size: int, cardinality: int) -> int:
    """`floor((1 - (-Ei(-a·t/(e^a-1)) + Ei(-a·e^a·t/(e^a-1)))/a)·m)`, `t = c/m`; 0 for c = 0."""
    if cardinality == 0:
        return 0
    # Imported here: SciPy costs every process that imports the sketch package about 0.2 s of
    # CPU at start-up (each mill job), and only the aggregator's reach estimate needs it.
    from scipy.special import expi

    t = cardinality / size
    e_a = math.exp(decay_rate)
    spread = -float(expi(-decay_rate * t / (e_a - 1))) + float(
        expi(-decay_rate * e_a * t / (e_a - 1))
    )
    return int((1 - spread / decay_rate) * size)


def estimate_sampled_reach(decay_rate: float, size: int, active_registers: int) -> int:
    """The reference's integer search for the cardinality whose expected active count is
    `active_registers`. Not exactly the smallest or largest preimage, and 0 registers give 1."""
    if decay_rate <= 1:
        raise SketchParameterError(f"decay rate must exceed 1, got {decay_rate}")
    if active_registers < 0:
        raise SketchParameterError(f"active register count must be >= 0, got {active_registers}")
    if size <= active_registers:
        raise SketchParameterError(
            f"sketch size {size} must exceed the active register count {active_registers}"
        )

    def expected(cardinality: int) -> int:
        return expected_active_registers(decay_rate, size, cardinality)

    left, right = 0, 1
    while expected(right) < active_registers:
        left, right = right, 2 * right
    middle = (left + right) // 2
    while right > left:
        if expected(middle) > active_registers:
            right = middle - 1
        else:
            left = middle + 1
        middle = (left + right) // 2
    return middle


def estimate_reach(decay_rate: float, size: int, active_registers: int) -> int:
    """Liquid Legions reach estimate from the number of active registers, without VID sampling.

    Port of the reference search (llv2.md §5.7): `estimate_reach(a, m, 0) == 1`, not 0.
    Requires `decay_rate > 1` and `size > active_registers`.
    """
    return estimate_sampled_reach(decay_rate, size, active_registers)


def estimate_reach_with_sampling(
    decay_rate: float, size: int, active_registers: int, sampling_width: float
) -> int:
    """`trunc(estimate / width)`, the width rounded to float32 first as on the wire."""
    width = float(np.float32(sampling_width))
    if not 0 < width <= 1:
        raise SketchParameterError(f"sampling width must be in (0, 1], got {sampling_width}")
    return int(estimate_sampled_reach(decay_rate, size, active_registers) / width)


def llv2_frequency_distribution(
    histogram: Sequence[int], noise_baseline: int | None = None
) -> dict[int, float]:
    """The relative frequency distribution from LLv2's phase-three histogram.

    `histogram[i]` counts registers with frequency i + 1 (the last bucket is "F or more"). With
    frequency noise, `noise_baseline` (= o_freq·D) is subtracted from every bucket, clamping at 0.
    Zero buckets are omitted; an all-zero histogram is an error.
    """
    counts = [int(c) for c in histogram]
    if any(c < 0 for c in counts):
        raise InconsistentAggregateError("histogram counts must be non-negative")
    if noise_baseline is not None:
        counts = [max(0, c - noise_baseline) for c in counts]
    total = sum(counts)
    if total == 0:
        raise InconsistentAggregateError("the frequency histogram is empty after noise removal")
    return {i + 1: c / total for i, c in enumerate(counts) if c}
