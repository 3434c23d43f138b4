"""FarmHash Fingerprint64, the hash behind VID sampling, VID index maps and sketch registers.

Guava's `farmHashFingerprint64` and pyfarmhash's `fingerprint64` both compute FarmHash
`Fingerprint64` (the "na" variant) over raw bytes; `str` input is hashed as its UTF-8 bytes. The
result is an unsigned 64-bit integer; Java reads the same bits as a signed long. Our only
known answer is structural (the empty input hashes to the constant k2); the numpy fast path below
is checked against pyfarmhash in the tests.
"""

from __future__ import annotations

import farmhash
import numpy as np

_K2 = np.uint64(0x9AE16A3B2F90404F)
_SHIFT_47 = np.uint64(47)


def fingerprint64(data: bytes | str) -> int:
    """FarmHash Fingerprint64 of `data` (UTF-8 for `str`), unsigned."""
    raw = data.encode() if isinstance(data, str) else data
    value: int = farmhash.fingerprint64(raw)
    return value


def signed64(value: int) -> int:
    """The unsigned 64-bit `value` read as a Java signed long."""
    return value - (1 << 64) if value >= 1 << 63 else value


_CHUNK = 1 << 16


def _short_fingerprints(first: np.ndarray, last: np.ndarray, length: int) -> np.ndarray:
    """FarmHash's 8..16-byte branch over the little-endian first and last 8-byte words."""
    out = np.empty(first.shape, dtype=np.uint64)
    for start in range(0, first.size, _CHUNK):
        stop = start + _CHUNK
        out[start:stop] = _short_chunk(first[start:stop], last[start:stop], length)
    return out


def _short_chunk(first: np.ndarray, last: np.ndarray, length: int) -> np.ndarray:
    # In-place arithmetic on cache-sized chunks; uint64 wrap-around is the intended arithmetic.
    mul = _K2 + np.uint64(2 * length)
    a = first + _K2
    c = last >> np.uint64(37)
    c |= last << np.uint64(27)
    c *= mul
    c += a
    d = a >> np.uint64(25)
    d |= a << np.uint64(39)
    d += last
    d *= mul
    # Mix (c, d): x = (c ^ d)·mul, x ^= x >> 47; y = (d ^ x)·mul, y ^= y >> 47; y·mul.
    c ^= d
    c *= mul
    c ^= c >> _SHIFT_47
    d ^= c
    d *= mul
    d ^= d >> _SHIFT_47
    d *= mul
    return d


def fingerprint64_le64(values: np.ndarray) -> np.ndarray:
    """Fingerprint64 of each value's 8 little-endian bytes (uint64 in, uint64 out)."""
    words = np.asarray(values).astype(np.uint64)
    return _short_fingerprints(words, words, 8)


def fingerprint64_be64_pair(high: np.ndarray, low: np.ndarray | int) -> np.ndarray:
    """Fingerprint64 of the 16 bytes `BE64(high) || BE64(low)` for each element."""
    first = np.asarray(high).astype(np.uint64).byteswap()
    last = np.broadcast_to(np.asarray(low, dtype=np.uint64).byteswap(), first.shape)
    return _short_fingerprints(first, last, 16)
