"""Chunk map order at any parallelism; shuffles are permutations that replay under a seed."""

from __future__ import annotations

import pytest

from cmms.crypto.randomness import SeededRandomSource
from cmms.protocols.liquid_legions.errors import InvalidStageInputError, PayloadSizeError
from cmms.protocols.liquid_legions.parallel import ExecutionOptions, chunk_bounds, map_chunks
from cmms.protocols.liquid_legions.records import record_count, split_trailing_ciphertext
from cmms.protocols.liquid_legions.shuffle import shuffle_records


def _square(x: int) -> int:
    return x * x


def test_chunk_bounds_cover_every_record_once() -> None:
    assert chunk_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert chunk_bounds(0, 4) == []


def test_map_chunks_keeps_order_across_processes() -> None:
    tasks = list(range(7))
    assert map_chunks(_square, tasks, ExecutionOptions(parallelism=2)) == [t * t for t in tasks]


def test_options_are_validated() -> None:
    with pytest.raises(InvalidStageInputError):
        ExecutionOptions(parallelism=0)
    with pytest.raises(InvalidStageInputError):
        ExecutionOptions(chunk_records=0)


def test_shuffle_is_a_seeded_permutation_of_records() -> None:
    records = [bytes([i]) * 5 for i in range(50)]
    payload = b"".join(records)
    first = shuffle_records(payload, 5, SeededRandomSource("s"))
    again = shuffle_records(payload, 5, SeededRandomSource("s"))
    other = shuffle_records(payload, 5, SeededRandomSource("t"))
    chunks = [first[i : i + 5] for i in range(0, len(first), 5)]
    assert sorted(chunks) == records
    assert first == again
    assert first != other and first != payload


def test_record_length_checks() -> None:
    assert record_count(bytes(198 * 2), 198, "x") == 2
    with pytest.raises(PayloadSizeError, match="not a multiple"):
        record_count(bytes(199), 198, "x")
    with pytest.raises(PayloadSizeError):
        split_trailing_ciphertext(bytes(65), 66, "x")
    records, trailing = split_trailing_ciphertext(bytes(range(132)), 66, "x")
    assert trailing == bytes(range(66, 132)) and len(records) == 66
