"""Reach and frequency from HMSS's combined, shuffled frequency vector (hmss_trustee.md §A.3).

The aggregator sees `N + 2T` values: `N` real registers plus both workers' noise registers. Noise
sits in fixed-size slots, so the expected noise per bucket is a public baseline (`2·offset` for
two workers) that is subtracted from the histogram.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmms.sketch.errors import InconsistentAggregateError, SketchParameterError


def scale_sampled_reach(count: int, sampling_width: float) -> int:
    """`trunc(count / width)`, the width rounded to float32 first (e.g. 10 / 0.1f gives 99)."""
    if count < 0:
        raise SketchParameterError(f"reach count must be non-negative, got {count}")
    width = float(np.float32(sampling_width))
    if not 0 < width <= 1:
        raise SketchParameterError(f"sampling width must be in (0, 1], got {sampling_width}")
    return int(count / width)


@dataclass(frozen=True)
class ReachAndFrequency:
    """A reach estimate and its relative frequency distribution (key MF means "MF or more")."""

    reach: int
    distribution: dict[int, float]


def hmss_reach_and_frequency(
    combined: np.ndarray,
    register_count: int,
    max_frequency: int,
    max_combined_frequency: int,
    ring_modulus: int,
    sampling_width: float,
    reach_noise_baseline: int | None = None,
    frequency_noise_baseline: int | None = None,
) -> ReachAndFrequency:
    """The R&F aggregation result; baselines are `2·offset` of the reach / frequency noisers.

    Values above `max_combined_frequency` other than the sentinel `q - 1` mean corrupted input.
    Zero buckets are omitted from the distribution.
    """
    if max_frequency < 1:
        raise SketchParameterError(f"maximum frequency must be at least 1, got {max_frequency}")
    if (reach_noise_baseline is None) != (frequency_noise_baseline is None):
        raise SketchParameterError("give both noise baselines or neither")
    values = np.asarray(combined, dtype=np.int64)
    invalid = (values > max_combined_frequency) & (values != ring_modulus - 1)
    if np.any(invalid):
        raise InconsistentAggregateError(
            f"combined value {int(values[invalid][0])} exceeds the maximum combined frequency "
            f"{max_combined_frequency}"
        )
    n = register_count
    histogram = np.bincount(values[values < max_frequency], minlength=max_frequency + 1)
    histogram = histogram[: max_frequency + 1].astype(np.int64)
    non_empty = n - int(histogram[0])
    if reach_noise_baseline is not None and frequency_noise_baseline is not None:
        histogram[0] = max(0, histogram[0] - reach_noise_baseline)
        histogram[1:max_frequency] = np.maximum(
            0, histogram[1:max_frequency] - frequency_noise_baseline
        )
        non_empty = min(max(non_empty + reach_noise_baseline, 0), n)
    below_max = int(histogram[:max_frequency].sum())
    if below_max > n:
        histogram[max_frequency] = 0
        total = below_max - int(histogram[0])
    else:
        histogram[max_frequency] = n - below_max
        total = n - int(histogram[0])
    if total == 0:
        raise InconsistentAggregateError("there is neither actual data nor effective noise")
    distribution = {
        k: int(histogram[k]) / total for k in range(1, max_frequency + 1) if histogram[k]
    }
    return ReachAndFrequency(scale_sampled_reach(non_empty, sampling_width), distribution)


def hmss_reach(
    combined: np.ndarray,
    register_count: int,
    sampling_width: float,
    reach_noise_baseline: int | None = None,
) -> int:
    """The reach-only aggregation: non-zero registers, minus the noise baseline, clamped to N."""
    non_empty = int(np.count_nonzero(np.asarray(combined)))
    if reach_noise_baseline is not None:
        non_empty = min(max(non_empty - reach_noise_baseline, 0), register_count)
    return scale_sampled_reach(non_empty, sampling_width)
