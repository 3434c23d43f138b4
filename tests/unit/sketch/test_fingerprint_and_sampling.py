"""FarmHash fast paths, LL VID sampling, the VID index map and frequency vectors."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import farmhash
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmms.sketch import (
    SamplingInterval,
    SketchParameterError,
    VidIndexMap,
    VidNotInPopulationError,
    build_frequency_vector,
    fingerprint64,
    ll_vid_sampling_mask,
    signed64,
    vid_sampling_hash,
)
from cmms.sketch.fingerprint import fingerprint64_be64_pair, fingerprint64_le64
from cmms.sketch.frequency_vector import VID_INDEX_SALT

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "sketch_results.json").read_text()
)


def test_fingerprint_semantics() -> None:
    # FarmHash Fingerprint64 of the empty input is its constant k2.
    assert fingerprint64(b"") == 0x9AE16A3B2F90404F
    assert fingerprint64("AnySketchFingerprint:1:Index") == fingerprint64(
        b"AnySketchFingerprint:1:Index"
    )
    # pyfarmhash hashes str as UTF-8 and returns unsigned values (Java sees them as signed).
    assert farmhash.fingerprint64("é") == farmhash.fingerprint64("é".encode())
    assert fingerprint64("é") == farmhash.fingerprint64("é".encode())
    assert max(fingerprint64(bytes([i])) for i in range(64)) >= 2**63
    assert signed64(0x9AE16A3B2F90404F) == 0x9AE16A3B2F90404F - 2**64
    assert signed64(5) == 5


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=0, max_value=2**64 - 1))
def test_vectorised_fingerprints_match_pyfarmhash(x: int, y: int) -> None:
    le = fingerprint64_le64(np.array([x], dtype=np.uint64))
    assert int(le[0]) == farmhash.fingerprint64(struct.pack("<Q", x))
    be = fingerprint64_be64_pair(np.array([x], dtype=np.uint64), y)
    assert int(be[0]) == farmhash.fingerprint64(struct.pack(">QQ", x, y))


def test_vid_sampling_hash_matches_the_scalar_definition() -> None:
    vids = np.arange(0, 3000, 7)
    hashed = vid_sampling_hash(vids)
    inverse = np.float32(1) / np.float32(8388607)
    for vid, h in zip(vids.tolist(), hashed.tolist(), strict=True):
        bucket = farmhash.fingerprint64(struct.pack("<q", vid + 1_414_214)) & 0x7FFFFF
        assert h == float(np.float32(bucket) * inverse)
    assert hashed.dtype == np.float32


def test_ll_vid_sampling_mask_with_and_without_wrap() -> None:
    vids = np.arange(20_000)
    hashed = vid_sampling_hash(vids)
    plain = ll_vid_sampling_mask(vids, 0.25, 0.5)
    assert np.array_equal(plain, (hashed >= np.float32(0.25)) & (hashed < np.float32(0.75)))
    wrapped = ll_vid_sampling_mask(vids, 0.75, 0.5)
    assert np.array_equal(wrapped, (hashed >= np.float32(0.75)) | (hashed < np.float32(0.25)))
    assert 0.45 < plain.mean() < 0.55
    assert ll_vid_sampling_mask(vids, 0.0, 1.0).all()
    with pytest.raises(SketchParameterError):
        ll_vid_sampling_mask(vids, 0.0, 0.0)


def test_vid_index_map_ranks_by_signed_fingerprint_then_vid() -> None:
    vids = [*range(1000, 1500), 7, 99_999_999]
    index_map = VidIndexMap(vids)
    keys = sorted(
        (signed64(farmhash.fingerprint64(struct.pack(">QQ", v, VID_INDEX_SALT))), v) for v in vids
    )
    expected = {vid: rank for rank, (_, vid) in enumerate(keys)}
    assert index_map.indexes(vids).tolist() == [expected[v] for v in vids]
    assert index_map.vids_by_index.tolist() == [vid for _, vid in keys]
    with pytest.raises(VidNotInPopulationError, match="5"):
        index_map.indexes([5])
    dense = VidIndexMap.from_ranges([(1, 300), (400, 500)])
    assert dense.indexes([1, 450]).tolist() == [
        int(np.flatnonzero(dense.vids_by_index == v)[0]) for v in (1, 450)
    ]
    with pytest.raises(VidNotInPopulationError):
        dense.indexes([350])
    with pytest.raises(SketchParameterError):
        VidIndexMap([1, 1])


def test_sampling_interval_uses_float32() -> None:
    case = VECTORS["sampling_interval"]
    interval = SamplingInterval.for_population(case["population"], case["start"], case["width"])
    assert (interval.first, interval.last) == (case["first"], case["last"])
    assert interval.register_count == case["register_count"]
    double_count = int(case["population"] * 0.7) - int(case["population"] * 0.2)
    assert double_count == case["register_count_in_double"]


def test_sampling_interval_wraps() -> None:
    interval = SamplingInterval.for_population(10, 0.8, 0.5)
    assert (interval.primary_count, interval.wrapped_count, interval.register_count) == (2, 3, 5)
    assert interval.local_indexes(np.arange(10)).tolist() == [2, 3, 4, -1, -1, -1, -1, -1, 0, 1]


def test_frequency_vector_counts_caps_and_samples() -> None:
    index_map = VidIndexMap.from_ranges([(1, 10)])
    interval = SamplingInterval.for_population(10, 0.0, 0.5)
    vid_at = index_map.vids_by_index
    events = [vid_at[0]] * 5 + [vid_at[3]] * 2 + [vid_at[4]] + [vid_at[7]] * 9
    vector = build_frequency_vector(index_map, interval, events, max_frequency=3)
    assert vector.tolist() == [3, 0, 0, 2, 1]
    assert vector.dtype == np.uint8
    reach_vector = build_frequency_vector(index_map, interval, events, max_frequency=1)
    assert reach_vector.tolist() == [1, 0, 0, 1, 1]
    with pytest.raises(SketchParameterError):
        build_frequency_vector(index_map, interval, events, max_frequency=0)
