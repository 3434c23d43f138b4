"""HMSS / TrusTee frequency vectors (hmss_trustee.md §A.1): VID index map and sampling interval.

Every VID of a population gets an index: its rank by `(signed fingerprint64(BE64(vid) ||
BE64(21858450)), vid)`. A measurement's sampling interval selects a (possibly wrapping) range of
those indices, and the frequency vector counts each selected VID's events, capped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cmms.sketch.errors import SketchParameterError, VidNotInPopulationError
from cmms.sketch.fingerprint import fingerprint64_be64_pair
from cmms.sketch.vid_sampling import check_sampling_interval

VID_INDEX_SALT = 1_618_033 + 20_240_417
MAX_POPULATION_VID = 2**31 - 2


class VidIndexMap:
    """The rank of every population VID by `(signed fingerprint, vid)`."""

    def __init__(self, vids: np.ndarray | Sequence[int]) -> None:
        # np.sort + neighbour check: np.unique is far slower on large int64 inputs.
        population = np.sort(np.asarray(vids, dtype=np.int64))
        if np.any(population[1:] == population[:-1]):
            raise SketchParameterError("population VIDs must be distinct")
        if population.size and (population[0] < 0 or population[-1] > MAX_POPULATION_VID):
            raise SketchParameterError(f"population VIDs must be in [0, {MAX_POPULATION_VID}]")
        hashes = fingerprint64_be64_pair(population, VID_INDEX_SALT).view(np.int64)
        order = np.argsort(hashes)
        sorted_hashes = hashes[order]
        if np.any(sorted_hashes[1:] == sorted_hashes[:-1]):
            order = np.lexsort((population, hashes))  # equal hashes: the smaller VID first
        self._sorted_vids = population
        self._index_of_sorted = np.empty(population.size, dtype=np.int64)
        self._index_of_sorted[order] = np.arange(population.size)
        self.vids_by_index = population[order]
        # Populations are usually a few dense VID ranges: a direct table beats binary search.
        self._dense_base = int(population[0]) if population.size else 0
        self._dense: np.ndarray | None = None
        span = int(population[-1]) - self._dense_base + 1 if population.size else 0
        if 0 < span <= 4 * population.size + 1024:
            self._dense = np.full(span, -1, dtype=np.int64)
            self._dense[population - self._dense_base] = self._index_of_sorted

    @classmethod
    def from_ranges(cls, ranges: Sequence[tuple[int, int]]) -> VidIndexMap:
        """The map of a population given as inclusive `(start, end)` VID ranges."""
        parts = [np.arange(start, end + 1, dtype=np.int64) for start, end in ranges]
        return cls(np.concatenate(parts) if parts else np.empty(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self._sorted_vids.size)

    def indexes(self, vids: np.ndarray | Sequence[int]) -> np.ndarray:
        """The index of each VID; `VidNotInPopulationError` for any outside the population."""
        wanted = np.asarray(vids, dtype=np.int64)
        if self._dense is not None:
            offsets = wanted - self._dense_base
            inside = (offsets >= 0) & (offsets < self._dense.size)
            indexes: np.ndarray = np.where(inside, self._dense[np.where(inside, offsets, 0)], -1)
            if np.any(indexes < 0):
                missing = int(wanted[indexes < 0][0])
                raise VidNotInPopulationError(f"VID {missing} is not in the population")
            return indexes
        position = np.searchsorted(self._sorted_vids, wanted)
        clipped = np.minimum(position, max(len(self) - 1, 0))
        found = (position < len(self)) & (self._sorted_vids[clipped] == wanted)
        if not np.all(found):
            missing = int(wanted[~found][0])
            raise VidNotInPopulationError(f"VID {missing} is not in the population")
        result: np.ndarray = self._index_of_sorted[clipped]
        return result


@dataclass(frozen=True)
class SamplingInterval:
    """The global index range a sampling interval selects from a population of `size` VIDs."""

    size: int
    first: int
    last: int  # inclusive; may be >= size, meaning it wraps to 0..last-size

    @classmethod
    def for_population(cls, size: int, start: float, width: float) -> SamplingInterval:
        """Bounds computed in float32, as reference EDPs do (this can change N for large sizes)."""
        start32, width32 = check_sampling_interval(start, width)
        size32 = np.float32(size)
        first = int(size32 * start32)
        last = int(size32 * (start32 + width32)) - 1
        return cls(size=size, first=first, last=last)

    @property
    def primary_count(self) -> int:
        return max(0, min(self.last, self.size - 1) - self.first + 1)

    @property
    def wrapped_count(self) -> int:
        return max(0, self.last - self.size + 1)

    @property
    def register_count(self) -> int:
        """N, the length of every frequency vector for this measurement."""
        return self.primary_count + self.wrapped_count

    def local_indexes(self, global_indexes: np.ndarray) -> np.ndarray:
        """Each global index's register, or -1 if the interval does not select it."""
        g = np.asarray(global_indexes, dtype=np.int64)
        primary = (g >= self.first) & (g <= min(self.last, self.size - 1))
        wrapped = g <= self.last - self.size
        local: np.ndarray = np.where(
            primary, g - self.first, np.where(wrapped, self.primary_count + g, -1)
        )
        return local


def build_frequency_vector(
    index_map: VidIndexMap,
    interval: SamplingInterval,
    event_vids: np.ndarray | Sequence[int],
    max_frequency: int,
) -> np.ndarray:
    """Per-register event counts of the sampled VIDs, capped at `max_frequency` (1 for reach)."""
    if max_frequency < 1:
        raise SketchParameterError(f"max frequency must be at least 1, got {max_frequency}")
    if interval.size != len(index_map):
        raise SketchParameterError(
            f"interval is for {interval.size} VIDs, the population has {len(index_map)}"
        )
    local = interval.local_indexes(index_map.indexes(event_vids))
    counts = np.bincount(local[local >= 0], minlength=interval.register_count)
    dtype = np.uint8 if max_frequency <= 255 else np.uint32
    return np.minimum(counts, max_frequency).astype(dtype)
