"""HMSS AGGREGATION_PHASE on the aggregator (spec §A.3, pitfalls 6, 8, 14).

The aggregator adds the two workers' share vectors mod q and reads a shuffled, noised multiset of
combined frequencies.

Tampering it detects: a malformed or truncated payload, a share value `>= q`, unequal lengths and,
for R&F, a combined value above maxCombined other than the sentinel `q - 1` (a random change of a
share, e.g. a wrong EDP seed, trips this with probability `(q - maxCombined - 2) / q` per register).
Tampering it cannot detect: any change that keeps every combined value in `[0, maxCombined]` or at
`q - 1`, such as raising one register's frequency, turning noise registers into other legal
values, or reordering registers.
Reach-only has no sentinel and no range, so every in-range change goes unnoticed there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cmms.crypto.errors import CryptoError
from cmms.crypto.sharing import add_mod
from cmms.protocols.errors import (
    InvalidProtocolInputError,
    NoDataNorNoiseError,
    ProtocolIntegrityError,
)
from cmms.protocols.histogram import value_counts
from cmms.protocols.hmss.noise import blind_histogram_noiser
from cmms.protocols.hmss.parameters import FrequencyVectorParams, NoiseConfig
from cmms.protocols.measurement import estimate_reach, float32_width


@dataclass(frozen=True, eq=False)
class AggregationPhaseRequest:
    """The two workers' share vectors plus what the aggregator knows of the measurement."""

    params: FrequencyVectorParams
    share_vectors: tuple[np.ndarray, ...]
    vid_sampling_interval_width: float
    maximum_frequency: int = 1
    noise: NoiseConfig = field(default_factory=NoiseConfig)


@dataclass(frozen=True)
class ReachResult:
    """Reach scaled by the sampling width."""

    reach: int


@dataclass(frozen=True)
class ReachAndFrequencyResult:
    """Reach plus the relative frequency distribution; only non-zero buckets, the last is MF+."""

    reach: int
    frequency_distribution: Mapping[int, float]


def complete_reach_and_frequency_aggregation_phase(
    request: AggregationPhaseRequest,
) -> ReachAndFrequencyResult:
    """Histogram of the combined vector, noise baseline removed, reach and distribution."""
    params = request.params
    n, q, mf = params.register_count, params.ring_modulus, request.maximum_frequency
    if mf < 1:
        raise InvalidProtocolInputError(f"maximum frequency must be at least 1, got {mf}")
    width = float32_width(request.vid_sampling_interval_width)
    counts = value_counts(_combine(request), q)
    impossible = np.flatnonzero(counts[params.maximum_combined_frequency + 1 : q - 1])
    if impossible.size:
        value = int(impossible[0]) + params.maximum_combined_frequency + 1
        raise ProtocolIntegrityError(
            f"combined register value {value} exceeds the maximum combined frequency "
            f"{params.maximum_combined_frequency} and is not the sentinel {q - 1}"
        )
    histogram = [int(c) for c in counts[: min(mf, q)]] + [0] * max(0, mf - q)
    non_empty = n - histogram[0]
    if request.noise.enabled:
        reach_privacy = request.noise.reach
        frequency_privacy = request.noise.require_frequency()
        assert reach_privacy is not None and frequency_privacy is not None
        reach_baseline = blind_histogram_noiser(reach_privacy, request.noise.mechanism).baseline
        frequency_baseline = blind_histogram_noiser(
            frequency_privacy, request.noise.mechanism
        ).baseline
        histogram[0] = max(0, histogram[0] - reach_baseline)
        for k in range(1, mf):
            histogram[k] = max(0, histogram[k] - frequency_baseline)
        non_empty = min(max(non_empty + reach_baseline, 0), n)
    accumulated = sum(histogram)
    if accumulated > n:
        top, total = 0, accumulated - histogram[0]
    else:
        top, total = n - accumulated, n - histogram[0]
    histogram.append(top)
    if total == 0:
        raise NoDataNorNoiseError(
            "the combined vector holds neither actual data nor effective noise"
        )
    distribution = {k: histogram[k] / total for k in range(1, mf + 1) if histogram[k] != 0}
    return ReachAndFrequencyResult(estimate_reach(non_empty, width), distribution)


def complete_reach_only_aggregation_phase(request: AggregationPhaseRequest) -> ReachResult:
    """Non-zero count of the combined vector, noise baseline removed, scaled by the width."""
    n = request.params.register_count
    width = float32_width(request.vid_sampling_interval_width)
    non_empty = int(np.count_nonzero(_combine(request)))
    if request.noise.enabled:
        assert request.noise.reach is not None
        baseline = blind_histogram_noiser(request.noise.reach, request.noise.mechanism).baseline
        non_empty = min(max(non_empty - baseline, 0), n)
    return ReachResult(estimate_reach(non_empty, width))


def _combine(request: AggregationPhaseRequest) -> np.ndarray:
    shares = request.share_vectors
    if len(shares) != 2:
        raise InvalidProtocolInputError(
            f"aggregation needs exactly 2 share vectors, got {len(shares)}"
        )
    first, second = shares
    if first.shape != second.shape or first.ndim != 1:
        raise InvalidProtocolInputError(
            f"share vector lengths differ: {first.size} != {second.size}"
        )
    try:
        return add_mod(first, second, request.params.ring_modulus)
    except CryptoError as error:
        raise InvalidProtocolInputError(str(error)) from error
