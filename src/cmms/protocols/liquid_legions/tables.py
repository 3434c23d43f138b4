"""Fixed-base tables for G and the public keys, built once per process and reused by every chunk."""

from __future__ import annotations

import os

from cmms.crypto.elgamal import PublicKey

_keys: dict[tuple[int, bytes], PublicKey] = {}


def public_key(element: bytes) -> PublicKey:
    """The `PublicKey` of `element` with its table, cached for this process."""
    # Keyed by pid: a forked worker must build its own table rather than reuse the parent's.
    slot = (os.getpid(), element)
    key = _keys.get(slot)
    if key is None:
        key = _keys[slot] = PublicKey(element)
    return key
