"""AES-CTR PRNG, range samplers and Fisher-Yates shuffle against the spec's known answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmms.crypto.errors import InvalidLengthError, OutOfRangeError
from cmms.crypto.prng import (
    AesCtrPrng,
    fisher_yates_targets,
    random_seed,
    secure_shuffle,
    shuffle_permutation,
    xor_seeds,
)
from cmms.crypto.randomness import SeededRandomSource

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "hmss_prng.json").read_text()
)


def _scalar_reference_shuffle(values: list[int], seed: bytes) -> list[int]:
    """A literal, loop-by-loop Fisher-Yates as §A.4 describes it."""
    data = list(values)
    n = len(data)
    if n <= 1:
        return data
    stream = AesCtrPrng(seed).random_bytes(16 * n)
    for i in range(n - 1):
        r = int.from_bytes(stream[16 * i : 16 * i + 16], "little")
        j = i + r % (n - i)
        data[i], data[j] = data[j], data[i]
    return data


def test_nist_keystream_blocks() -> None:
    case = VECTORS["nist_keystream"]
    prng = AesCtrPrng(bytes.fromhex(case["seed_hex"]))
    # Odd-sized reads check that the stream is continuous across calls and partial blocks.
    stream = prng.random_bytes(5) + prng.random_bytes(27) + prng.random_bytes(32)
    assert stream.hex() == "".join(case["blocks_hex"])


@pytest.mark.parametrize("case", VECTORS["uniform_range"])
def test_uniform_range_known_answers(case: dict[str, Any]) -> None:
    prng = AesCtrPrng(case["seed_ascii"].encode())
    values = prng.uniform_range(case["size"], case["q"])
    assert values.tolist() == case["values"]
    assert values.dtype == np.uint8


@pytest.mark.parametrize("case", VECTORS["nonzero_uniform_range"])
def test_nonzero_uniform_range_known_answers(case: dict[str, Any]) -> None:
    prng = AesCtrPrng(case["seed_ascii"].encode())
    assert prng.nonzero_uniform_range(case["size"], case["q"]).tolist() == case["values"]


def test_stream_position_after_small_draws() -> None:
    case = VECTORS["stream_position"][0]
    prng = AesCtrPrng(bytes([case["seed_byte"]]) * 48)
    assert prng.uniform_range(case["size"], case["q"]).tolist() == case["rv1"]
    assert prng.uniform_range(case["size"], case["q"]).tolist() == case["rv2"]
    assert prng.random_bytes(48).hex() == case["shuffle_seed_hex"]


def test_stream_position_with_rejections_and_second_batch() -> None:
    case = VECTORS["stream_position"][1]
    prng = AesCtrPrng(bytes([case["seed_byte"]]) * 48)
    rv1 = prng.uniform_range(case["size"], case["q"]).tolist()
    rv2 = prng.uniform_range(case["size"], case["q"]).tolist()
    assert (rv1[:5], rv1[-5:]) == (case["rv1_head"], case["rv1_tail"])
    assert (rv2[:5], rv2[-5:]) == (case["rv2_head"], case["rv2_tail"])
    assert prng.random_bytes(48).hex() == case["shuffle_seed_hex"]


def test_power_of_two_modulus_discards_exactly_one_value_per_call() -> None:
    seed = b"\x07" * 48
    stream = AesCtrPrng(seed).random_bytes(20)
    prng = AesCtrPrng(seed)
    first, second = prng.uniform_range(4, 256), prng.uniform_range(4, 256)
    assert first.tobytes() == stream[0:4]
    assert second.tobytes() == stream[5:9]


@pytest.mark.parametrize(
    "q", [2, 3, 200, 257, 1021, 65521, 65536, 2**20 + 3, 2**24 + 3, 2**31 - 1, 2**32]
)
def test_uniform_range_values_match_a_scalar_rejection_sampler(q: int) -> None:
    seed = bytes(range(48))
    values = AesCtrPrng(seed).uniform_range(300, q)
    bits = (q - 1).bit_length()
    width = (bits + 7) // 8
    stream = AesCtrPrng(seed).random_bytes(width * 2000)
    expected: list[int] = []
    for offset in range(0, len(stream), width):
        candidate = int.from_bytes(stream[offset : offset + width], "big") & ((1 << bits) - 1)
        if candidate < q:
            expected.append(candidate)
    assert values.tolist() == expected[:300]
    assert values.dtype.itemsize * 8 >= bits


def test_nonzero_range_never_yields_zero() -> None:
    values = AesCtrPrng(b"\x09" * 48).nonzero_uniform_range(5000, 2)
    assert set(values.tolist()) == {1}


def test_zero_size_draws_nothing() -> None:
    seed = b"\x05" * 48
    prng = AesCtrPrng(seed)
    assert prng.uniform_range(0, 127).size == 0
    assert prng.nonzero_uniform_range(0, 127).size == 0
    assert prng.random_bytes(16) == AesCtrPrng(seed).random_bytes(16)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(InvalidLengthError):
        AesCtrPrng(b"x" * 47)
    with pytest.raises(InvalidLengthError):
        shuffle_permutation(10, b"x" * 49)
    prng = AesCtrPrng(b"x" * 48)
    with pytest.raises(OutOfRangeError):
        prng.uniform_range(3, 1)
    with pytest.raises(OutOfRangeError):
        prng.uniform_range(-1, 127)
    with pytest.raises(OutOfRangeError):
        prng.nonzero_uniform_range(3, 2**32 + 1)


@pytest.mark.parametrize("case", VECTORS["shuffle"])
def test_shuffle_known_answers(case: dict[str, Any]) -> None:
    shuffled = secure_shuffle(np.arange(case["n"]), bytes([case["seed_byte"]]) * 48)
    assert shuffled[: len(case["prefix"])].tolist() == case["prefix"]


def test_shuffle_of_tiny_inputs_is_identity() -> None:
    assert secure_shuffle(np.array([42]), b"\x01" * 48).tolist() == [42]
    assert secure_shuffle(np.array([], dtype=np.uint8), b"\x01" * 48).size == 0


def test_swap_targets_match_128_bit_arithmetic() -> None:
    n, seed = 3000, b"\x44" * 48
    stream = AesCtrPrng(seed).random_bytes(16 * n)
    expected = [
        i + int.from_bytes(stream[16 * i : 16 * i + 16], "little") % (n - i) for i in range(n)
    ]
    assert fisher_yates_targets(n, seed).tolist() == expected


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=400), st.binary(min_size=48, max_size=48))
def test_vectorised_shuffle_equals_the_swap_loop(n: int, seed: bytes) -> None:
    values = list(range(100, 100 + n))
    assert secure_shuffle(np.array(values, dtype=np.int64), seed).tolist() == (
        _scalar_reference_shuffle(values, seed)
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=2, max_value=3000), st.binary(min_size=48, max_size=48))
def test_shuffle_is_a_permutation(n: int, seed: bytes) -> None:
    permutation = shuffle_permutation(n, seed)
    assert np.array_equal(np.sort(permutation), np.arange(n))


def test_larger_shuffle_equals_the_swap_loop() -> None:
    # Large enough for long legacy chains and many repeated swap targets.
    seed = b"\x3c" * 48
    values = list(range(50_000))
    assert secure_shuffle(np.array(values), seed).tolist() == _scalar_reference_shuffle(
        values, seed
    )


def test_seed_helpers() -> None:
    assert len(random_seed(SeededRandomSource(1))) == 48
    assert random_seed(SeededRandomSource(1)) != random_seed(SeededRandomSource(2))
    assert xor_seeds(b"\x11" * 48, b"\x22" * 48) == b"\x33" * 48
    with pytest.raises(InvalidLengthError):
        xor_seeds(b"\x11" * 47, b"\x22" * 48)
