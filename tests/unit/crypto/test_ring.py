"""`cmms.crypto.ring`: modulus checks, storage types, and the primality test HMSS reach needs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cmms.crypto.errors import OutOfRangeError
from cmms.crypto.ring import MAX_RING_MODULUS, is_prime, ring_dtype


def sieve(limit: int) -> set[int]:
    marks = np.ones(limit + 1, dtype=bool)
    marks[:2] = False
    for n in range(2, int(limit**0.5) + 1):
        if marks[n]:
            marks[n * n :: n] = False
    return {int(n) for n in np.flatnonzero(marks)}


def test_is_prime_agrees_with_a_sieve() -> None:
    primes = sieve(5000)
    assert [n for n in range(-3, 5001) if is_prime(n)] == sorted(primes)


@given(st.integers(min_value=2, max_value=2**16), st.integers(min_value=2, max_value=2**15))
def test_products_are_not_prime(a: int, b: int) -> None:
    assert not is_prime(a * b)


def test_large_known_values() -> None:
    assert is_prime(127) and is_prime(2_147_483_647) and is_prime(4_294_967_291)
    assert not is_prime(2_147_483_649) and not is_prime(MAX_RING_MODULUS)


def test_ring_dtype_is_the_narrowest_and_checks_the_modulus() -> None:
    assert ring_dtype(256) == np.uint8 and ring_dtype(257) == np.uint16
    assert ring_dtype(MAX_RING_MODULUS) == np.uint32
    for bad in (1, MAX_RING_MODULUS + 1):
        with pytest.raises(OutOfRangeError):
            ring_dtype(bad)
