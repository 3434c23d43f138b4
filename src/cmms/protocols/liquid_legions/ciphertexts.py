"""Small batch helpers on ElGamal ciphertexts used by several stages."""

from __future__ import annotations

from cmms.crypto import elgamal, group
from cmms.crypto.elgamal import Ciphertexts
from cmms.crypto.group import ORDER
from cmms.crypto.randomness import RandomSource
from cmms.protocols.liquid_legions.tables import public_key


def subtract(a: Ciphertexts, b: Ciphertexts) -> Ciphertexts:
    """Componentwise `a - b`: encrypts `M_a - M_b`."""
    return Ciphertexts(group.subtract(a.u, b.u), group.subtract(a.e, b.e))


def broadcast(ct: bytes, count: int) -> Ciphertexts:
    """`count` copies of one encoded ciphertext."""
    with elgamal.decode_ciphertexts(ct) as one:
        return one.take([0] * count)


def zero_encryptions(key_element: bytes, nonces: list[int]) -> Ciphertexts:
    """`(r·G, r·Y)` for each nonce `r`, with fixed-base tables."""
    return Ciphertexts(
        group.generator_table().multiply(nonces), public_key(key_element).table.multiply(nonces)
    )


def products(a: list[int], b: list[int]) -> list[int]:
    """`a_i·b_i mod n`."""
    return [x * y % ORDER for x, y in zip(a, b, strict=True)]


def fresh_scalars(random: RandomSource, count: int) -> list[int]:
    """`count` uniform scalars in `[1, n-1]`."""
    return elgamal.random_scalars(random, count)
