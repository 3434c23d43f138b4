"""Injected randomness: seeded sources replay, derive independently and survive pickling."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmms.crypto.randomness import (
    RandomSource,
    SeededRandomSource,
    SystemRandomSource,
    random_scalar,
)


def test_seeded_source_replays() -> None:
    assert SeededRandomSource(7).randbytes(64) == SeededRandomSource(7).randbytes(64)
    assert SeededRandomSource(7).randbytes(64) != SeededRandomSource(8).randbytes(64)


def test_derived_sources_are_deterministic_and_distinct() -> None:
    parent = SeededRandomSource("seed")
    a1, a2 = parent.derive("a").randbytes(32), SeededRandomSource("seed").derive("a").randbytes(32)
    b = parent.derive("b").randbytes(32)
    assert a1 == a2
    assert a1 != b


def test_pickled_source_resumes_its_stream() -> None:
    source = SeededRandomSource(1)
    source.randbytes(100)
    clone = pickle.loads(pickle.dumps(source))
    assert clone.randbytes(50) == source.randbytes(50)


@given(st.integers(min_value=1, max_value=2**300))
def test_randbelow_stays_in_range(upper: int) -> None:
    value = SeededRandomSource(upper).randbelow(upper)
    assert 0 <= value < upper


def test_randbelow_is_roughly_uniform() -> None:
    source = SeededRandomSource(3)
    counts = [0] * 6
    for _ in range(6000):
        counts[source.randbelow(6)] += 1
    assert all(800 < c < 1200 for c in counts)


def test_random_scalar_never_zero() -> None:
    source = SeededRandomSource(5)
    assert all(1 <= random_scalar(source, 3) <= 2 for _ in range(200))


@pytest.mark.parametrize("bad", [0, -1])
def test_randbelow_rejects_non_positive_bounds(bad: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        SystemRandomSource().randbelow(bad)


def test_sources_satisfy_protocol() -> None:
    assert isinstance(SystemRandomSource(), RandomSource)
    assert isinstance(SeededRandomSource(0), RandomSource)
