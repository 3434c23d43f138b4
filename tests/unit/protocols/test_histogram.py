"""Chunked value counts equal numpy's bincount."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cmms.protocols import histogram
from cmms.protocols.histogram import value_counts


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=300), st.integers(1, 50))
def test_matches_bincount(values: list[int], minlength: int) -> None:
    array = np.array(values, dtype=np.uint8)
    assert (
        value_counts(array, minlength).tolist() == np.bincount(array, minlength=minlength).tolist()
    )


def test_chunk_boundaries(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(histogram, "_CHUNK", 7)
    array = np.random.default_rng(1).integers(0, 9, 100).astype(np.uint8)
    assert value_counts(array, 3).tolist() == np.bincount(array, minlength=3).tolist()
