"""TrusTee result noisers: how reach, impressions and histogram buckets are released."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class ResultNoiser(Protocol):
    """Noise applied to the aggregates of one combined frequency vector, in the draw order
    reach, impressions (only with thresholds), then buckets 1..MF."""

    def noise_reach(self, reach: int) -> int:
        """The released sampled reach (may be negative)."""
        ...

    def noise_impressions(self, histogram: Sequence[int]) -> int:
        """The released impression count from `histogram[f-1]` = #registers with value f."""
        ...

    def noise_frequency_bucket(self, bucket_index: int, count: int) -> int:
        """The released count of 0-based bucket `bucket_index` (never negative)."""
        ...


class RawResultNoiser:
    """Mechanism NONE: values pass through; impressions are the uncapped `Σ f·histogram[f-1]`."""

    def noise_reach(self, reach: int) -> int:
        return reach

    def noise_impressions(self, histogram: Sequence[int]) -> int:
        return sum(frequency * count for frequency, count in enumerate(histogram, start=1))

    def noise_frequency_bucket(self, bucket_index: int, count: int) -> int:
        return count
