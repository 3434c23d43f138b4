"""AES-256-CTR seeded PRNG, bit-compatible with any-sketch's OpenSSL uniform random generator.

A 48-byte seed is `key (32 bytes) || iv (16 bytes)`; the IV is the initial big-endian counter and
the keystream runs on across calls. The range samplers replicate the reference's batch
oversampling exactly: each call draws whole batches and drops the unread tail of its last batch,
so the stream position after a call (and hence every later draw from the same PRNG) matches
reference workers, not just the values of a single call.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from cmms.crypto import shuffle_kernel
from cmms.crypto.errors import InvalidLengthError, OutOfRangeError
from cmms.crypto.randomness import RandomSource
from cmms.crypto.ring import check_ring_modulus, ring_dtype

SEED_LENGTH = 48
KEY_LENGTH = 32


def random_seed(source: RandomSource) -> bytes:
    """A fresh 48-byte PRNG seed (an EDP's share seed, a worker's random seed)."""
    return source.randbytes(SEED_LENGTH)


def xor_seeds(first: bytes, second: bytes) -> bytes:
    """The byte-wise XOR of two 48-byte seeds (HMSS's common seed of the two workers)."""
    if len(first) != SEED_LENGTH or len(second) != SEED_LENGTH:
        raise InvalidLengthError(
            f"seeds must be {SEED_LENGTH} bytes, got {len(first)}, {len(second)}"
        )
    return bytes(a ^ b for a, b in zip(first, second, strict=True))


class AesCtrPrng:
    """A deterministic byte and integer stream keyed by a 48-byte seed."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_LENGTH:
            raise InvalidLengthError(f"PRNG seed must be {SEED_LENGTH} bytes, got {len(seed)}")
        key, iv = bytes(seed[:KEY_LENGTH]), bytes(seed[KEY_LENGTH:])
        self._encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()

    def random_bytes(self, n: int) -> bytes:
        """The next `n` keystream bytes."""
        if n < 0:
            raise OutOfRangeError(f"byte count must be non-negative, got {n}")
        return self._encryptor.update(bytes(n))

    def _keystream(self, n: int) -> np.ndarray:
        if n == 0:
            return np.empty(0, dtype=np.uint8)
        # `update_into` needs block_size - 1 bytes of slack in its output buffer.
        buffer = bytearray(n + 15)
        written = self._encryptor.update_into(bytes(n), buffer)
        return np.frombuffer(buffer, dtype=np.uint8, count=written)

    def uniform_range(self, size: int, q: int) -> np.ndarray:
        """`size` uniform values in `[0, q)` (reference `GenerateUniformRandomRange`)."""
        check_ring_modulus(q)
        if size < 0:
            raise OutOfRangeError(f"size must be non-negative, got {size}")
        bits = (q - 1).bit_length()
        bytes_per_value = (bits + 7) // 8
        mask = (1 << bits) - 1
        reject_fraction = ((1 << bits) - q) / (1 << bits)
        out = np.empty(size, dtype=ring_dtype(q))
        filled = 0
        while filled < size:
            batch = _batch_size(size - filled, reject_fraction)
            raw = self._keystream(batch * bytes_per_value)
            values = _big_endian_values(raw, bytes_per_value) & mask
            accepted = values[values < q][: size - filled]
            out[filled : filled + accepted.size] = accepted
            filled += accepted.size
        return out

    def nonzero_uniform_range(self, size: int, q: int) -> np.ndarray:
        """`size` uniform values in `[1, q)` (reference `GenerateNonZeroUniformRandomRange`)."""
        check_ring_modulus(q)
        if size < 0:
            raise OutOfRangeError(f"size must be non-negative, got {size}")
        out = np.empty(size, dtype=ring_dtype(q))
        filled = 0
        while filled < size:
            batch = _batch_size(size - filled, 1.0 / q)
            values = self.uniform_range(batch, q)
            accepted = values[values != 0][: size - filled]
            out[filled : filled + accepted.size] = accepted
            filled += accepted.size
        return out


def _batch_size(remaining: int, reject_fraction: float) -> int:
    # The reference's oversampling formula, evaluated in IEEE double in exactly this order.
    current = float(remaining)
    return int((current + 1.0) + ((reject_fraction * current) / (1.0 - reject_fraction)))


def _big_endian_values(raw: np.ndarray, bytes_per_value: int) -> np.ndarray:
    if bytes_per_value == 1:
        return raw
    if bytes_per_value == 2:
        return raw.view(">u2")
    if bytes_per_value == 4:
        return raw.view(">u4")
    groups = raw.reshape(-1, bytes_per_value).astype(np.uint64)
    values = np.zeros(groups.shape[0], dtype=np.uint64)
    for column in range(bytes_per_value):
        values = (values << np.uint64(8)) | groups[:, column]
    return values


MAX_SHUFFLE_LENGTH = 2**31 - 1
_SWAP_BYTES = 16
_CHUNK = 1 << 20
_STEP_BITS = 31
_STEP_MASK = (1 << _STEP_BITS) - 1


def secure_shuffle(data: np.ndarray, seed: bytes) -> np.ndarray:
    """A shuffled copy of `data`, as reference `SecureShuffleWithSeed(data, seed)` leaves it."""
    if shuffle_kernel.available():
        return secure_shuffle_in_place(np.array(data), seed)
    shuffled: np.ndarray = data[shuffle_permutation(len(data), seed)]
    return shuffled


_KERNEL_CHUNK = 1 << 16  # steps per keystream read: 1 MiB of AES output stays cache-resident


def secure_shuffle_in_place(data: np.ndarray, seed: bytes) -> np.ndarray:
    """Shuffle the 1-D array `data` in place (and return it), with the result of `secure_shuffle`.

    With the optional compiled kernel (`cmms.crypto.shuffle_kernel`) this needs no memory beyond
    one keystream chunk; without it, it builds the `n`-element permutation as `secure_shuffle` does.
    """
    n = len(data)
    swap_steps = shuffle_kernel.kernel()
    if swap_steps is None:
        data[:] = data[shuffle_permutation(n, seed)]
        return data
    if len(seed) != SEED_LENGTH:
        raise InvalidLengthError(f"shuffle seed must be {SEED_LENGTH} bytes, got {len(seed)}")
    if not 0 <= n <= MAX_SHUFFLE_LENGTH:
        raise OutOfRangeError(f"shuffle length must be in [0, {MAX_SHUFFLE_LENGTH}], got {n}")
    prng = AesCtrPrng(seed)
    for start in range(0, max(0, n - 1), _KERNEL_CHUNK):
        stop = min(n - 1, start + _KERNEL_CHUNK)
        swap_steps(data, prng._keystream(_SWAP_BYTES * (stop - start)).view("<u8"), start, n)
    return data


def shuffle_permutation(n: int, seed: bytes) -> np.ndarray:
    """Indices `perm` with `secure_shuffle(x, seed) == x[perm]` for any `x` of length `n`.

    The reference runs forward Fisher-Yates: for i = 0..n-2 swap `x[i]` and `x[j_i]`, with
    `j_i = i + (r_i mod (n - i))` and `r_i` the i-th 16 keystream bytes of `AesCtrPrng(seed)` read
    as a little-endian 128-bit integer. The swaps are resolved here without a Python loop.
    """
    if len(seed) != SEED_LENGTH:
        raise InvalidLengthError(f"shuffle seed must be {SEED_LENGTH} bytes, got {len(seed)}")
    if not 0 <= n <= MAX_SHUFFLE_LENGTH:
        raise OutOfRangeError(f"shuffle length must be in [0, {MAX_SHUFFLE_LENGTH}], got {n}")
    if n <= 1:
        return np.arange(n, dtype=np.int64)
    return _compose_swaps(fisher_yates_targets(n, seed))


def fisher_yates_targets(n: int, seed: bytes) -> np.ndarray:
    """`j_i` for i = 0..n-1 (the last is always n-1, a no-op swap), as int64."""
    prng = AesCtrPrng(seed)
    targets = np.empty(n, dtype=np.int64)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        words = prng._keystream(_SWAP_BYTES * (stop - start)).view("<u8").reshape(-1, 2)
        low, high = words[:, 0], words[:, 1]
        span = np.arange(n - start, n - stop, -1, dtype=np.uint64)
        # r mod m for r = high·2^64 + low and m < 2^32, without 128-bit integers.
        two64_mod_span = (np.uint64(2**64 - 1) % span + np.uint64(1)) % span
        offset = ((high % span) * two64_mod_span + low % span) % span
        targets[start:stop] = offset.astype(np.int64) + np.arange(start, stop, dtype=np.int64)
    return targets


def _compose_swaps(targets: np.ndarray) -> np.ndarray:
    """The permutation made by swapping positions i and `targets[i]` for i = 0, 1, ... in turn.

    Position i is final after step i (later steps touch only positions > i). Step i takes the
    value then at `targets[i]`: the value the last earlier step aimed at that position left there,
    or the original one. The value a step leaves behind is whatever sat at its own position, which
    is again the legacy of the last earlier step aimed there. Both "last earlier step aimed at p"
    lookups come from one sort of (target, step) pairs; the legacy chains (their lengths halve
    geometrically) are then followed back to original positions.
    """
    n = targets.size
    # One sort of (target, step) packed into an int64 (both < 2**31), then int32 from here on:
    # narrower gathers miss the cache less.
    order = np.sort((targets << _STEP_BITS) | np.arange(n, dtype=np.int64))
    sorted_target = (order >> _STEP_BITS).astype(np.int32)
    sorted_step = (order & _STEP_MASK).astype(np.int32)
    del order
    starts_group = np.empty(n, dtype=bool)
    starts_group[0] = True
    np.not_equal(sorted_target[1:], sorted_target[:-1], out=starts_group[1:])
    previous_step = np.empty(n, dtype=np.int32)
    previous_step[0] = -1
    previous_step[1:] = sorted_step[:-1]
    previous_step[starts_group] = -1

    # earlier_aim[i]: the last step before i that targeted the same position as step i.
    earlier_aim = np.empty(n, dtype=np.int32)
    earlier_aim[sorted_step] = previous_step

    # legacy_source[p]: the last step strictly before step p that targeted position p.
    ends = np.flatnonzero(np.append(starts_group[1:], True))
    end_target, end_step = sorted_target[ends], sorted_step[ends]
    legacy_source = np.full(n, -1, dtype=np.int32)
    legacy_source[end_target] = np.where(end_step < end_target, end_step, previous_step[ends])
    del sorted_target, sorted_step, previous_step, starts_group

    # origin[p]: the original position of the value sitting at p just before step p.
    origin = np.arange(n, dtype=np.int32)
    pending = np.flatnonzero(legacy_source >= 0).astype(np.int32)
    hop = legacy_source[pending]
    while pending.size:
        next_hop = legacy_source[hop]
        done = next_hop < 0
        origin[pending[done]] = hop[done]
        unresolved = ~done
        pending, hop = pending[unresolved], next_hop[unresolved]

    aimed = earlier_aim >= 0
    permutation = targets.copy()
    permutation[aimed] = origin[earlier_aim[aimed]]
    return permutation
