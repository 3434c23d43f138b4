"""The ring Z_q used by HMSS shares: modulus validation and the smallest numpy storage type."""

from __future__ import annotations

import numpy as np

from cmms.crypto.errors import OutOfRangeError

MAX_RING_MODULUS = 2**32


def check_ring_modulus(q: int) -> None:
    """Raise `OutOfRangeError` unless `2 <= q <= 2**32`."""
    if not 2 <= q <= MAX_RING_MODULUS:
        raise OutOfRangeError(f"ring modulus must be in [2, 2**32], got {q}")


def ring_dtype(q: int) -> np.dtype[np.unsignedinteger]:
    """The narrowest unsigned dtype holding every value in `[0, q)`; uint8 for q <= 256."""
    check_ring_modulus(q)
    for dtype in (np.uint8, np.uint16, np.uint32):
        if q - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise AssertionError("unreachable: q <= 2**32")  # pragma: no cover


def is_prime(q: int) -> bool:
    """Whether Z_q is a field (reach-only HMSS needs one). Trial division, as the reference's
    reach-only check does."""
    if q < 2:
        return False
    if q % 2 == 0:
        return q == 2
    divisor = 3
    while divisor * divisor <= q:
        if q % divisor == 0:
            return False
        divisor += 2
    return True
