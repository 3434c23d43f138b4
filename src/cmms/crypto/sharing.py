"""Additive secret sharing over Z_q (HMSS frequency vectors), vectorised with numpy.

A vector `x` is split as `share1 = AesCtrPrng(seed).uniform_range(N, q)` and
`share2 = x - share1 (mod q)`, so only `share2` and the 48-byte seed need to travel. Shares are
stored in `ring_dtype(q)` (uint8 for q <= 256).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cmms.crypto.errors import InvalidLengthError, OutOfRangeError
from cmms.crypto.prng import AesCtrPrng
from cmms.crypto.ring import check_ring_modulus, ring_dtype


def as_ring_vector(values: np.ndarray | Sequence[int], q: int, name: str = "vector") -> np.ndarray:
    """`values` as a 1-D array in `ring_dtype(q)`; `OutOfRangeError` if any is outside `[0, q)`."""
    check_ring_modulus(q)
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidLengthError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return np.empty(0, dtype=ring_dtype(q))
    if not np.issubdtype(array.dtype, np.integer):
        raise OutOfRangeError(f"{name} must hold integers, got dtype {array.dtype}")
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= q:
        bad = low if low < 0 else high
        raise OutOfRangeError(f"{name} element {bad} is outside [0, {q})")
    return array.astype(ring_dtype(q), copy=False)


def expand_seed_share(seed: bytes, size: int, q: int) -> np.ndarray:
    """The share a 48-byte seed stands for: `AesCtrPrng(seed).uniform_range(size, q)`."""
    return AesCtrPrng(seed).uniform_range(size, q)


def split(values: np.ndarray | Sequence[int], q: int, seed: bytes) -> np.ndarray:
    """The data share `x - expand_seed_share(seed, len(x), q) (mod q)`; the seed is the other."""
    vector = as_ring_vector(values, q, "frequency vector")
    return sub_mod(vector, expand_seed_share(seed, vector.size, q), q)


def add_mod(a: np.ndarray | Sequence[int], b: np.ndarray | Sequence[int], q: int) -> np.ndarray:
    """`(a + b) mod q`, elementwise; both inputs must lie in `[0, q)` and have equal length."""
    left, right = _checked_pair(a, b, q)
    return _reduce_once(left.astype(_work_dtype(q)) + right, q)


def sub_mod(a: np.ndarray | Sequence[int], b: np.ndarray | Sequence[int], q: int) -> np.ndarray:
    """`(a - b) mod q`, elementwise; both inputs must lie in `[0, q)` and have equal length."""
    left, right = _checked_pair(a, b, q)
    work = _work_dtype(q)
    return _reduce_once(left.astype(work) + (work.type(q) - right.astype(work)), q)


def _work_dtype(q: int) -> np.dtype[np.unsignedinteger]:
    # Narrowest unsigned type holding 2q - 2, so a sum of two residues never wraps.
    for dtype in (np.uint8, np.uint16, np.uint32, np.uint64):
        if 2 * (q - 1) <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise AssertionError("unreachable: q <= 2**32")  # pragma: no cover


def _reduce_once(total: np.ndarray, q: int) -> np.ndarray:
    """`total mod q` for `total < 2q`: unsigned `total - q` wraps above `total` when `total < q`."""
    reduced: np.ndarray = np.minimum(total, total - total.dtype.type(q))
    return reduced.astype(ring_dtype(q), copy=False)


def combine(shares: Sequence[np.ndarray | Sequence[int]], q: int) -> np.ndarray:
    """The sum of all shares mod q (at least one share, all of one length)."""
    if not shares:
        raise InvalidLengthError("at least one share is needed")
    total = as_ring_vector(shares[0], q, "share 0")
    for share in shares[1:]:
        total = add_mod(total, share, q)
    return total


def _checked_pair(
    a: np.ndarray | Sequence[int], b: np.ndarray | Sequence[int], q: int
) -> tuple[np.ndarray, np.ndarray]:
    left = as_ring_vector(a, q, "left operand")
    right = as_ring_vector(b, q, "right operand")
    if left.size != right.size:
        raise InvalidLengthError(f"operand lengths differ: {left.size} != {right.size}")
    return left, right
