"""EDP-side frequency vectors from sampled VIDs (spec §A.1), for simulators and ground truth.

VIDs are given by their index in the population's VID index map, `[0, P)`. The sampling
interval arithmetic is float32 like the reference builder's, and wraps past `P` when
`start + width > 1`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmms.protocols.errors import InvalidProtocolInputError


@dataclass(frozen=True)
class SamplingInterval:
    """The sampled slice of a population of `population_size` VID indexes."""

    population_size: int
    start: float
    width: float

    def __post_init__(self) -> None:
        if not 1 <= self.population_size < 2**31 - 1:
            raise InvalidProtocolInputError(
                f"population size must be in [1, 2**31 - 1), got {self.population_size}"
            )
        if not 0 < np.float32(self.width) <= 1 or not 0 <= np.float32(self.start) <= 1:
            raise InvalidProtocolInputError(
                f"need 0 < width <= 1 and 0 <= start <= 1, got {self.start}, {self.width}"
            )

    @property
    def bounds(self) -> tuple[int, int]:
        """`(gs, ge)`: the first and last sampled global index, `ge` possibly `>= P` (wrapping)."""
        size = np.float32(self.population_size)
        start, width = np.float32(self.start), np.float32(self.width)
        first = int(np.float32(size * start))
        last = int(np.float32(size * np.float32(start + width))) - 1
        return first, last

    @property
    def primary_count(self) -> int:
        first, last = self.bounds
        return max(0, min(last, self.population_size - 1) - first + 1)

    @property
    def register_count(self) -> int:
        """N = primary + wrapped register count."""
        _, last = self.bounds
        wrapped = last - self.population_size + 1 if last >= self.population_size else 0
        return self.primary_count + wrapped

    def local_indices(self, global_indices: np.ndarray) -> np.ndarray:
        """The register index of each sampled VID index; unsampled ones are dropped."""
        values = np.asarray(global_indices, dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() >= self.population_size):
            raise InvalidProtocolInputError("VID indexes must lie in [0, population size)")
        first, last = self.bounds
        primary = (values >= first) & (values <= min(last, self.population_size - 1))
        wrapped = values <= last - self.population_size
        return np.concatenate(
            [values[primary] - first, values[wrapped & ~primary] + self.primary_count]
        )


def frequency_vector(
    vid_indices: np.ndarray, interval: SamplingInterval, maximum_frequency: int
) -> np.ndarray:
    """Per-register impression counts of a VID multiset, capped at `maximum_frequency` (uint8)."""
    if not 1 <= maximum_frequency <= 255:
        raise InvalidProtocolInputError(
            f"maximum frequency must be in 1..255, got {maximum_frequency}"
        )
    counts = np.bincount(interval.local_indices(vid_indices), minlength=interval.register_count)
    return np.minimum(counts, maximum_frequency).astype(np.uint8)
