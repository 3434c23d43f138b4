"""Optional compiled Fisher-Yates swap loop (numba), used by `cmms.crypto.prng` when available.

The loop reads each step's 16 keystream bytes as a little-endian 128-bit `r = hi·2^64 + lo` and
swaps `data[i]` with `data[i + r mod (n - i)]`, in place. `r mod m` for `m < 2^31` is reduced in
three 64-bit divisions over 32-bit limbs: `((hi mod m)·2^32 + lo_high) mod m`, then the same with
`lo_low`. numba is an optional dependency (extra `fast`); without it `available()` is False and
the caller falls back to its vectorised numpy path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

_kernel: Callable[[np.ndarray, np.ndarray, int, int], None] | None = None
_loaded = False


def _compile() -> Callable[[np.ndarray, np.ndarray, int, int], None] | None:
    try:
        from numba import njit  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        return None
    shift, low_mask = np.uint64(32), np.uint64(0xFFFFFFFF)

    def swap_steps(data: Any, words: Any, start: int, n: int) -> None:
        for k in range(words.shape[0] // 2):
            i = start + k
            if i >= n - 1:
                return
            m = np.uint64(n - i)
            low, high = words[2 * k], words[2 * k + 1]
            r = high % m
            r = ((r << shift) | (low >> shift)) % m
            r = ((r << shift) | (low & low_mask)) % m
            j = i + np.int64(r)
            held = data[i]
            data[i] = data[j]
            data[j] = held

    try:
        compiled: Callable[[np.ndarray, np.ndarray, int, int], None] = njit(
            cache=True, nogil=True, boundscheck=False
        )(swap_steps)
    except RuntimeError:
        # No writable cache location (e.g. a read-only install): compile once per process.
        compiled = njit(nogil=True, boundscheck=False)(swap_steps)
    return compiled


def kernel() -> Callable[[np.ndarray, np.ndarray, int, int], None] | None:
    """`swap_steps(data, words, start, n)` compiled by numba, or None if numba is missing.

    `words` holds the uint64 pairs `(lo, hi)` of steps `start, start + 1, ...`; `data` is
    shuffled in place.
    """
    global _kernel, _loaded
    if not _loaded:
        _kernel, _loaded = _compile(), True
    return _kernel


def available() -> bool:
    """Whether the compiled kernel can be used."""
    return kernel() is not None
