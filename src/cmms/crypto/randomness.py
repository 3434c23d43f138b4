"""Injected randomness for the pure core.

Every pure function that needs randomness takes a `RandomSource`. Production passes
`SystemRandomSource` (the OS CSPRNG); tests pass `SeededRandomSource` so that whole protocol runs
replay bit for bit. Sources can be *derived* by label, which gives parallel workers independent yet
deterministic streams (a seeded parent yields seeded children; the system source yields fresh system
sources).
"""

from __future__ import annotations

import hashlib
import os
from typing import Protocol, runtime_checkable

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


@runtime_checkable
class RandomSource(Protocol):
    """A source of uniformly random bytes and integers."""

    def randbytes(self, n: int) -> bytes:
        """Return `n` uniformly random bytes."""
        ...

    def randbelow(self, upper: int) -> int:
        """Return a uniform integer in `[0, upper)`; `upper` must be positive."""
        ...

    def derive(self, label: str) -> RandomSource:
        """An independent source for a sub-task (deterministic for seeded sources)."""
        ...


def _randbelow_from_bytes(source: RandomSource, upper: int) -> int:
    if upper <= 0:
        raise ValueError(f"upper bound must be positive, got {upper}")
    if upper == 1:
        return 0
    bits = (upper - 1).bit_length()
    nbytes = (bits + 7) // 8
    excess = nbytes * 8 - bits
    while True:  # rejection sampling: no modulo bias
        candidate = int.from_bytes(source.randbytes(nbytes), "big") >> excess
        if candidate < upper:
            return candidate


class SystemRandomSource:
    """The operating system's CSPRNG."""

    def randbytes(self, n: int) -> bytes:
        return os.urandom(n)

    def randbelow(self, upper: int) -> int:
        return _randbelow_from_bytes(self, upper)

    def derive(self, label: str) -> SystemRandomSource:
        return SystemRandomSource()


class SeededRandomSource:
    """A deterministic stream: AES-256-CTR keyed by SHA-256 of the seed. For tests and replays."""

    def __init__(self, seed: bytes | str | int) -> None:
        if isinstance(seed, int):
            seed = seed.to_bytes(max(1, (seed.bit_length() + 7) // 8), "big", signed=False)
        elif isinstance(seed, str):
            seed = seed.encode()
        self._key = hashlib.sha256(b"cmms-seeded-random\x00" + seed).digest()
        self._consumed = 0
        self._encryptor = Cipher(algorithms.AES(self._key), modes.CTR(bytes(16))).encryptor()

    def randbytes(self, n: int) -> bytes:
        self._consumed += n
        return self._encryptor.update(bytes(n))

    def randbelow(self, upper: int) -> int:
        return _randbelow_from_bytes(self, upper)

    def derive(self, label: str) -> SeededRandomSource:
        return SeededRandomSource(self._key + b"\x00derive\x00" + label.encode())

    # Picklable, so a seeded source can be handed to a worker process and resume where it was.
    def __getstate__(self) -> dict[str, object]:
        return {"key": self._key, "consumed": self._consumed}

    def __setstate__(self, state: dict[str, object]) -> None:
        key = state["key"]
        consumed = state["consumed"]
        assert isinstance(key, bytes) and isinstance(consumed, int)
        self._key = key
        self._consumed = 0
        self._encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        self.randbytes(consumed)


def random_scalar(source: RandomSource, order: int) -> int:
    """A uniform scalar in `[1, order - 1]`."""
    return 1 + source.randbelow(order - 1)
