"""Liquid Legions sketches built from VIDs (llv2.md §3.1-§3.2).

A VID lands in register `index` drawn from a truncated exponential over `[0, m)` (low indices
dense), carries a "sampling indicator" key in `[0, sampling_indicator_size)` and adds 1 to the
register's count per event. Registers holding VIDs with different keys are destroyed. Everything is
a deterministic function of the VID, so every EDP puts a given VID in the same register with the
same key.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cmms.sketch.errors import SketchParameterError
from cmms.sketch.fingerprint import fingerprint64

# In the sketch proto the UNIQUE key is stored shifted by one; 0 marks a destroyed register.
DESTROYED_KEY = 0
_TWO_POW_64 = float(2**64)


@dataclass(frozen=True)
class LiquidLegionsParams:
    """Sketch shape: exponential decay rate `a`, `max_size` registers, key space size."""

    decay_rate: float
    max_size: int
    sampling_indicator_size: int = 10_000_000

    def __post_init__(self) -> None:
        if not (math.isfinite(self.decay_rate) and self.decay_rate > 0):
            raise SketchParameterError(f"decay rate must be positive, got {self.decay_rate}")
        if self.max_size < 1:
            raise SketchParameterError(f"max size must be at least 1, got {self.max_size}")
        if self.sampling_indicator_size < 1:
            raise SketchParameterError(
                f"sampling indicator size must be at least 1, got {self.sampling_indicator_size}"
            )


def _vid_fingerprint(vid: int, name: str) -> int:
    return fingerprint64(f"AnySketchFingerprint:{vid}:{name}")


def register_index(vid: int, decay_rate: float, max_size: int) -> int:
    """`floor(m·(1 - ln(e^a + u·(1 - e^a))/a))` with `u = fingerprint/2^64` (the "Index" column)."""
    u = _vid_fingerprint(vid, "Index") / _TWO_POW_64
    e_a = math.exp(decay_rate)
    x = 1 - math.log(e_a + u * (1 - e_a)) / decay_rate
    # u rounds to 1.0 only for the top 2^-54 of fingerprints, which would give index m.
    return min(int(x * max_size), max_size - 1)


def sampling_indicator(vid: int, sampling_indicator_size: int) -> int:
    """The VID's unshifted key: fingerprint("...:SamplingIndicator") mod the key space size."""
    return _vid_fingerprint(vid, "SamplingIndicator") % sampling_indicator_size


@dataclass(frozen=True)
class LiquidLegionsSketch:
    """Non-empty registers sorted by index; `keys` are proto values (key + 1, or 0 if destroyed)."""

    indexes: np.ndarray
    keys: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_vids(
        cls, vids: np.ndarray | Sequence[int], params: LiquidLegionsParams
    ) -> LiquidLegionsSketch:
        """The sketch of an event multiset (a VID appears once per event)."""
        distinct, events = np.unique(np.asarray(vids, dtype=np.int64), return_counts=True)
        indexes = np.array(
            [register_index(int(v), params.decay_rate, params.max_size) for v in distinct],
            dtype=np.int64,
        )
        keys = np.array(
            [sampling_indicator(int(v), params.sampling_indicator_size) + 1 for v in distinct],
            dtype=np.int64,
        )
        order = np.argsort(indexes, kind="stable")
        indexes, keys, events = indexes[order], keys[order], events[order]
        if indexes.size == 0:
            empty = np.empty(0, dtype=np.int64)
            return cls(empty, empty.copy(), empty.copy())
        starts = np.flatnonzero(np.append(True, indexes[1:] != indexes[:-1]))
        consistent = np.minimum.reduceat(keys, starts) == np.maximum.reduceat(keys, starts)
        return cls(
            indexes=indexes[starts],
            keys=np.where(consistent, keys[starts], DESTROYED_KEY),
            counts=np.add.reduceat(events, starts),
        )

    def __len__(self) -> int:
        return int(self.indexes.size)


@dataclass(frozen=True)
class ReachOnlyLiquidLegionsSketch:
    """The sorted distinct register indexes of a reach-only sketch."""

    indexes: np.ndarray

    @classmethod
    def from_vids(
        cls, vids: np.ndarray | Sequence[int], decay_rate: float, max_size: int
    ) -> ReachOnlyLiquidLegionsSketch:
        """The sketch of a set of VIDs (repeats change nothing)."""
        LiquidLegionsParams(decay_rate, max_size)  # validates
        distinct = np.unique(np.asarray(vids, dtype=np.int64))
        indexes = {register_index(int(v), decay_rate, max_size) for v in distinct}
        return cls(np.array(sorted(indexes), dtype=np.int64))

    def __len__(self) -> int:
        return int(self.indexes.size)
