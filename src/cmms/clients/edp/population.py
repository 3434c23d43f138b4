"""Synthetic audiences: a population of VIDs and, per EDP, the multiset of VIDs of its impressions.

Everything is a pure function of the population seed and the EDP's id, so each simulator process
regenerates its own events independently and still gets the configured overlap with the others:

- the population is the VIDs `first_vid .. first_vid + size - 1`, put in one shared random order;
- an EDP reaching `n` VIDs takes the first `round(overlap * n)` VIDs of that shared order (the
  shared audience) and draws the rest uniformly, with its own random stream, from the VIDs after
  that prefix. Two EDPs therefore share at least `min(their shared prefixes)` VIDs; with overlap 1
  the smaller audience lies inside the larger, with overlap 0 they overlap only by chance;
- each reached VID gets `k` impressions with probability `weights[k - 1]`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np

DEFAULT_FREQUENCY_WEIGHTS = (0.4, 0.25, 0.15, 0.1, 0.05, 0.05)


def _generator(seed: int, label: str) -> np.random.Generator:
    # A hash of the label (not a position in some list) keys each stream, so adding an EDP never
    # changes the events of another.
    key = int.from_bytes(hashlib.sha256(label.encode()).digest()[:8], "big")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key,))))


@dataclass(frozen=True)
class FrequencyDistribution:
    """Impressions per reached VID: `k` with probability `weights[k - 1]` (normalised)."""

    weights: tuple[float, ...] = DEFAULT_FREQUENCY_WEIGHTS

    def __post_init__(self) -> None:
        if not self.weights or any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise ValueError(
                f"frequency weights must be non-negative with a positive sum, got {self.weights}"
            )

    @property
    def probabilities(self) -> np.ndarray:
        weights = np.asarray(self.weights, dtype=np.float64)
        probabilities: np.ndarray = weights / weights.sum()
        return probabilities


@dataclass(frozen=True)
class Population:
    """`size` consecutive VIDs from `first_vid`, in a shared order drawn from `seed`."""

    seed: int
    size: int
    first_vid: int = 1
    overlap: float = 0.5

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"population size must be positive, got {self.size}")
        if self.first_vid < 0 or self.first_vid + self.size - 1 > 2**31 - 2:
            raise ValueError("population VIDs must lie in [0, 2**31 - 2]")
        if not 0 <= self.overlap <= 1:
            raise ValueError(f"overlap must be in [0, 1], got {self.overlap}")

    @property
    def vids(self) -> np.ndarray:
        """Every VID of the population, ascending."""
        return np.arange(self.first_vid, self.first_vid + self.size, dtype=np.int64)

    @cached_property
    def shared_order(self) -> np.ndarray:
        """The population's VIDs in the shared order that shared audiences are prefixes of."""
        order: np.ndarray = self.first_vid + _generator(self.seed, "shared-audience").permutation(
            self.size
        )
        return order.astype(np.int64)


@dataclass(frozen=True)
class Audience:
    """What one EDP reaches: a fraction of the population and how often."""

    data_provider_id: str
    reach_fraction: float
    frequency: FrequencyDistribution = FrequencyDistribution()

    def __post_init__(self) -> None:
        if not 0 <= self.reach_fraction <= 1:
            raise ValueError(f"reach fraction must be in [0, 1], got {self.reach_fraction}")

    def reach(self, population: Population) -> int:
        return round(self.reach_fraction * population.size)

    def shared_count(self, population: Population) -> int:
        """How many of the reached VIDs come from the shared audience."""
        return round(population.overlap * self.reach(population))


def reached_vids(population: Population, audience: Audience) -> np.ndarray:
    """The distinct VIDs `audience` reaches, ascending."""
    reach = audience.reach(population)
    shared = audience.shared_count(population)
    order = population.shared_order
    rng = _generator(population.seed, f"audience/{audience.data_provider_id}")
    own = rng.choice(population.size - shared, size=reach - shared, replace=False)
    vids = np.concatenate((order[:shared], order[shared:][own]))
    vids.sort()
    return vids


def impression_vids(population: Population, audience: Audience) -> np.ndarray:
    """The EDP's events as a VID multiset: each reached VID repeated once per impression."""
    vids = reached_vids(population, audience)
    rng = _generator(population.seed, f"frequency/{audience.data_provider_id}")
    probabilities = audience.frequency.probabilities
    counts = rng.choice(probabilities.size, size=vids.size, p=probabilities) + 1
    events: np.ndarray = np.repeat(vids, counts)
    return events


@dataclass(frozen=True)
class ReachAndFrequency:
    """Reach and the share of it at each frequency 1..max (the top bucket holds everything above)."""

    reach: int
    relative_frequency: dict[int, float]


def reach_and_frequency(events: Iterable[np.ndarray], max_frequency: int) -> ReachAndFrequency:
    """Plain counting over the union of several EDPs' events, frequencies capped at the maximum."""
    if max_frequency < 1:
        raise ValueError(f"max frequency must be at least 1, got {max_frequency}")
    parts = [np.asarray(e, dtype=np.int64) for e in events]
    merged = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    _, counts = np.unique(merged, return_counts=True)
    reach = int(counts.size)
    histogram = np.bincount(np.minimum(counts, max_frequency), minlength=max_frequency + 1)
    relative = {
        f: (float(histogram[f]) / reach if reach else 0.0) for f in range(1, max_frequency + 1)
    }
    return ReachAndFrequency(reach=reach, relative_frequency=relative)
