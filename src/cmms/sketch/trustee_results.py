"""TrusTee aggregation and results (hmss_trustee.md §B.4).

Plaintext frequency vectors are summed with a cap at the maximum frequency; the histogram of the
sum is released through a `ResultNoiser` (raw, continuous Gaussian or deterministic truncated
Laplace), optionally with small-cell thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmms.dp.result_noise import ResultNoiser
from cmms.sketch.errors import SketchParameterError


@dataclass(frozen=True)
class ResultThresholds:
    """Small-cell suppression: minimum (scaled) impressions and users."""

    min_impressions: int
    min_users: int

    def __post_init__(self) -> None:
        if self.min_impressions <= 0 or self.min_users <= 0:
            raise SketchParameterError("result thresholds must be positive")


def _check_width(width: float) -> float:
    width64 = float(np.float32(width))
    if not 0 < width64 <= 1:
        raise SketchParameterError(f"Invalid vid sampling interval width {width}")
    return width64


class FrequencyVectorAggregator:
    """Adds EDP frequency vectors, capping every register at the maximum frequency."""

    def __init__(
        self,
        max_frequency: int,
        sampling_width: float,
        drop_below_min_users: int | None = None,
    ) -> None:
        """`drop_below_min_users` (DTL with thresholds) skips vectors reaching too few users."""
        if max_frequency < 1:
            raise SketchParameterError(f"Invalid max frequency {max_frequency}")
        self.max_frequency = max_frequency
        self.width = _check_width(sampling_width)
        self._drop_below = drop_below_min_users
        self._sum: np.ndarray | None = None
        self.contributions = 0

    def add(self, vector: np.ndarray | bytes) -> bool:
        """Add one vector (signed bytes or integers); False if the drop rule skipped it."""
        values = (
            np.frombuffer(vector, dtype=np.int8).astype(np.int64)
            if isinstance(vector, bytes)
            else np.asarray(vector, dtype=np.int64)
        )
        if values.size == 0:
            raise SketchParameterError("frequency vector is empty")
        if np.any(values < 0):
            raise SketchParameterError("frequency vector holds negative values")
        if self._sum is not None and values.size != self._sum.size:
            raise SketchParameterError(
                f"frequency vector length {values.size} differs from {self._sum.size}"
            )
        reached = np.count_nonzero(values) / self.width
        if self._drop_below is not None and reached < self._drop_below:
            return False
        base = self._sum if self._sum is not None else np.zeros(values.size, dtype=np.int64)
        self._sum = np.minimum(base + values, self.max_frequency)
        self.contributions += 1
        return True

    @property
    def aggregate(self) -> np.ndarray:
        """The capped sum so far."""
        if self._sum is None:
            raise SketchParameterError("no frequency vector has been added")
        return self._sum

    def histogram(self) -> list[int]:
        """`histogram[k-1]` = registers whose capped sum is k, for k = 1..max_frequency."""
        counts = np.bincount(self.aggregate, minlength=self.max_frequency + 1)
        return [int(c) for c in counts[1 : self.max_frequency + 1]]


def trustee_reach(
    histogram: list[int],
    vector_size: int,
    sampling_width: float,
    noiser: ResultNoiser,
    thresholds: ResultThresholds | None = None,
) -> int:
    """Noised sampled reach scaled by the width and capped at `vector_size / width`.

    With thresholds, 0 if the scaled noised impressions or users fall below them.
    """
    width = _check_width(sampling_width)
    noised = noiser.noise_reach(sum(histogram))
    scaled = 0 if noised < 0 else int(noised / width)
    scaled = min(scaled, int(vector_size / width))
    if thresholds is not None:
        impressions = int(noiser.noise_impressions(histogram) / width)
        if impressions < thresholds.min_impressions or scaled < thresholds.min_users:
            return 0
    return scaled


def trustee_frequency_distribution(
    histogram: list[int],
    sampling_width: float,
    noiser: ResultNoiser,
    thresholds: ResultThresholds | None = None,
) -> dict[int, float]:
    """Relative frequencies for every key 1..MF (zeros included).

    With thresholds, buckets below them are folded into the next lower bucket, from the top
    down (bucket 1's small count is dropped).
    """
    width = _check_width(sampling_width)
    noised = [noiser.noise_frequency_bucket(k, count) for k, count in enumerate(histogram)]
    keys = range(1, len(histogram) + 1)
    if sum(noised) == 0:
        return dict.fromkeys(keys, 0.0)
    if thresholds is not None:
        for index in range(len(noised) - 1, -1, -1):
            frequency, count = index + 1, noised[index]
            too_small = (
                count / width < thresholds.min_users
                or frequency * count / width < thresholds.min_impressions
            )
            if too_small:
                noised[index] = 0
                if index > 0:
                    noised[index - 1] += count
    total = sum(noised)
    if total == 0:
        return dict.fromkeys(keys, 0.0)
    return {k: noised[k - 1] / total for k in keys}
