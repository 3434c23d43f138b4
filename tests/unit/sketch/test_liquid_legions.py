"""Liquid Legions sketches: register placement, UNIQUE keys and SUM counts."""

from __future__ import annotations

import math

import farmhash
import numpy as np
import pytest

from cmms.sketch import (
    LiquidLegionsParams,
    LiquidLegionsSketch,
    ReachOnlyLiquidLegionsSketch,
    SketchParameterError,
    estimate_reach,
    register_index,
    sampling_indicator,
)


def test_register_index_follows_the_exponential_formula() -> None:
    for vid in (0, 1, 17, 123_456_789):
        u = farmhash.fingerprint64(f"AnySketchFingerprint:{vid}:Index".encode()) / 2.0**64
        x = 1 - math.log(math.exp(12) + u * (1 - math.exp(12))) / 12
        assert register_index(vid, 12, 100_000) == int(x * 100_000)
    key = farmhash.fingerprint64(b"AnySketchFingerprint:17:SamplingIndicator") % 1000
    assert sampling_indicator(17, 1000) == key


def test_indexes_decay_exponentially() -> None:
    indexes = np.array([register_index(v, 5.0, 1000) for v in range(20_000)])
    assert indexes.min() >= 0 and indexes.max() < 1000
    low, high = np.count_nonzero(indexes < 100), np.count_nonzero(indexes >= 900)
    # P(index < 0.1m) / P(index >= 0.9m) = (1 - e^-0.5) / (e^-4.5 - e^-5) ≈ 89 for a = 5.
    assert 60 < low / high < 130


def test_sketch_merges_keys_and_sums_counts() -> None:
    params = LiquidLegionsParams(decay_rate=12, max_size=10, sampling_indicator_size=1000)
    vids = list(range(1, 60))
    events = vids + vids[:5] + vids[:2]
    sketch = LiquidLegionsSketch.from_vids(events, params)
    expected: dict[int, tuple[set[int], int]] = {}
    for vid in events:
        keys, count = expected.get(register_index(vid, 12, 10), (set(), 0))
        keys.add(sampling_indicator(vid, 1000))
        expected[register_index(vid, 12, 10)] = (keys, count + 1)
    assert sketch.indexes.tolist() == sorted(expected)
    for index, key, count in zip(sketch.indexes, sketch.keys, sketch.counts, strict=True):
        keys, total = expected[int(index)]
        assert count == total
        assert key == (next(iter(keys)) + 1 if len(keys) == 1 else 0)
    assert 0 in sketch.keys.tolist()  # 59 VIDs in 10 registers must collide


def test_single_vid_register_keeps_shifted_key() -> None:
    params = LiquidLegionsParams(12, 100_000, 10)
    sketch = LiquidLegionsSketch.from_vids([42, 42, 42], params)
    assert sketch.indexes.tolist() == [register_index(42, 12, 100_000)]
    assert sketch.keys.tolist() == [sampling_indicator(42, 10) + 1]
    assert sketch.counts.tolist() == [3]
    assert len(LiquidLegionsSketch.from_vids([], params)) == 0


def test_reach_only_sketch_estimates_its_cardinality() -> None:
    sketch = ReachOnlyLiquidLegionsSketch.from_vids(np.arange(5000).repeat(2), 12, 100_000)
    assert len(sketch) == len(set(sketch.indexes.tolist()))
    assert abs(estimate_reach(12, 100_000, len(sketch)) - 5000) < 0.05 * 5000


def test_invalid_params() -> None:
    with pytest.raises(SketchParameterError):
        LiquidLegionsParams(0.0, 10)
    with pytest.raises(SketchParameterError):
        LiquidLegionsParams(12, 0)
    with pytest.raises(SketchParameterError):
        LiquidLegionsParams(12, 10, 0)
