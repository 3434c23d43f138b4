"""EC-ElGamal on P-256 as in spec/llv2.md §1.3-§1.5 (PJC `CommutativeElGamal` semantics).

A message is a curve point `M`; under public element `Y = x·G` a ciphertext is
`(u, e) = (r·G, M + r·Y)`, serialised as `u(33) || e(33)`. The identity is the plaintext "zero":
decryption reports it explicitly instead of failing to serialise it.

Batch functions work on `Ciphertexts` (two `Points` batches) so that protocol code decodes once,
computes, and encodes once; `r·G` and `r·Y` use fixed-base tables. Every batch function takes an
optional `out` (which may be the input itself) to avoid allocating. The `*_one` functions are
byte-in/byte-out conveniences for single ciphertexts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cmms.crypto import group
from cmms.crypto.errors import InvalidLengthError, OutOfRangeError
from cmms.crypto.group import ORDER, POINT_SIZE, SCALAR_SIZE, FixedBaseTable, Points
from cmms.crypto.randomness import RandomSource, random_scalar

CIPHERTEXT_SIZE = 2 * POINT_SIZE

# ---------------------------------------------------------------------------------------------
# Keys


def check_secret(secret: int, what: str = "secret key") -> None:
    """Raise OutOfRangeError unless `secret` is in `[1, n-1]`."""
    if not 1 <= secret < ORDER:
        raise OutOfRangeError(f"{what} must be in [1, n-1]")


def secret_to_bytes(secret: int) -> bytes:
    """Minimal big-endian bytes of a secret key (how keys are stored)."""
    check_secret(secret)
    return secret.to_bytes((secret.bit_length() + 7) // 8, "big")


def secret_from_bytes(data: bytes) -> int:
    """Parse big-endian secret-key bytes; the value must be in `[1, n-1]`."""
    if not 1 <= len(data) <= SCALAR_SIZE:
        raise InvalidLengthError(f"a secret key is 1..{SCALAR_SIZE} bytes, got {len(data)}")
    secret = int.from_bytes(data, "big")
    check_secret(secret)
    return secret


def public_element(secret: int) -> bytes:
    """The public element `x·G` of secret key `x`."""
    check_secret(secret)
    return group.base_multiply(secret)


@dataclass(frozen=True)
class KeyPair:
    """An ElGamal key pair; the generator is always the standard base point G."""

    secret: int = field(repr=False)
    public: bytes

    @classmethod
    def from_secret(cls, secret: int) -> KeyPair:
        """The key pair of secret `secret`."""
        return cls(secret, public_element(secret))

    @property
    def secret_bytes(self) -> bytes:
        """The secret key as minimal big-endian bytes."""
        return secret_to_bytes(self.secret)


def generate_key_pair(random: RandomSource) -> KeyPair:
    """A fresh key pair with secret uniform in `[1, n-1]`."""
    return KeyPair.from_secret(random_scalar(random, ORDER))


def combine_public_keys(elements: Sequence[bytes]) -> bytes:
    """The composite public element `sum(elements)`; a single element is returned as is."""
    # Compressed encodings are canonical, so one element comes back byte-identical.
    return group.sum_points(elements)


class PublicKey:
    """A public element `Y` with its fixed-base table (built on first use, once per process)."""

    __slots__ = ("_table", "element")

    def __init__(self, element: bytes) -> None:
        """Wrap the compressed element; raises if it is not a valid point."""
        if len(element) != POINT_SIZE:
            raise InvalidLengthError(f"a public element is {POINT_SIZE} bytes, got {len(element)}")
        group.decode_points(element).close()
        self.element = bytes(element)
        self._table: FixedBaseTable | None = None

    @property
    def table(self) -> FixedBaseTable:
        """Fixed-base table for `Y` (about 20 ms to build)."""
        if self._table is None:
            self._table = FixedBaseTable(self.element)
        return self._table

    def __reduce__(self) -> Any:
        return (PublicKey, (self.element,))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.element == self.element

    def __hash__(self) -> int:
        return hash(self.element)

    def __repr__(self) -> str:
        return f"PublicKey({self.element.hex()})"


# ---------------------------------------------------------------------------------------------
# Ciphertext batches


class Ciphertexts:
    """A batch of ElGamal ciphertexts as two equally long point batches `u` and `e`."""

    __slots__ = ("e", "u")

    def __init__(self, u: Points, e: Points) -> None:
        """Pair up `u` and `e` (taken over, not copied)."""
        if len(u) != len(e):
            raise InvalidLengthError(f"u has {len(u)} points but e has {len(e)}")
        self.u = u
        self.e = e

    @classmethod
    def empty(cls, count: int) -> Ciphertexts:
        """`count` placeholder ciphertexts (both halves the identity), e.g. as an `out` batch."""
        return cls(Points(count), Points(count))

    def __len__(self) -> int:
        return len(self.u)

    def __repr__(self) -> str:
        return f"Ciphertexts({len(self)})"

    def close(self) -> None:
        """Free both halves now."""
        self.u.close()
        self.e.close()

    def __enter__(self) -> Ciphertexts:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def copy(self) -> Ciphertexts:
        """An independent copy."""
        return Ciphertexts(self.u.copy(), self.e.copy())

    def take(self, indices: Iterable[int]) -> Ciphertexts:
        """Copies of the ciphertexts at `indices`, in that order."""
        picked = list(indices)
        return Ciphertexts(self.u.take(picked), self.e.take(picked))


def decode_ciphertexts(
    buf: bytes | bytearray | memoryview, *, offset: int = 0, stride: int = CIPHERTEXT_SIZE
) -> Ciphertexts:
    """Decode 66-byte ciphertexts (one at `offset` in each `stride`-byte record), validating both points."""
    if stride < CIPHERTEXT_SIZE or not 0 <= offset <= stride - CIPHERTEXT_SIZE:
        raise OutOfRangeError(f"offset {offset} / stride {stride} do not fit a 66-byte ciphertext")
    if len(buf) % stride:
        raise InvalidLengthError(f"{len(buf)} bytes is not a multiple of {stride}")
    u = group.decode_points(buf, offset=offset, stride=stride)
    try:
        e = group.decode_points(buf, offset=offset + POINT_SIZE, stride=stride)
    except Exception:
        u.close()
        raise
    return Ciphertexts(u, e)


def encode_ciphertexts_into(
    cts: Ciphertexts,
    out: bytearray | memoryview,
    *,
    offset: int = 0,
    stride: int = CIPHERTEXT_SIZE,
) -> None:
    """Write `u || e` of each ciphertext at `offset` within each `stride`-byte record of `out`."""
    if stride < CIPHERTEXT_SIZE or not 0 <= offset <= stride - CIPHERTEXT_SIZE:
        raise OutOfRangeError(f"offset {offset} / stride {stride} do not fit a 66-byte ciphertext")
    group.encode_points_into(cts.u, out, offset=offset, stride=stride)
    group.encode_points_into(cts.e, out, offset=offset + POINT_SIZE, stride=stride)


def encode_ciphertexts(cts: Ciphertexts) -> bytes:
    """The 66-byte encodings `u || e`, concatenated."""
    out = bytearray(CIPHERTEXT_SIZE * len(cts))
    encode_ciphertexts_into(cts, out)
    return bytes(out)


def _result(count: int, out: Ciphertexts | None) -> Ciphertexts:
    if out is None:
        return Ciphertexts.empty(count)
    if len(out) != count:
        raise InvalidLengthError(f"out batch has {len(out)} ciphertexts, expected {count}")
    return out


def _keep_u(cts: Ciphertexts, result: Ciphertexts) -> None:
    if result.u is not cts.u:
        group.copy(cts.u, out=result.u)


def random_scalars(random: RandomSource, count: int) -> list[int]:
    """`count` independent uniform scalars in `[1, n-1]`."""
    pool = random.randbytes(SCALAR_SIZE * count)
    scalars = []
    for start in range(0, len(pool), SCALAR_SIZE):
        value = int.from_bytes(pool[start : start + SCALAR_SIZE], "big")
        # Rejection keeps the distribution uniform; it happens with probability about 2^-32.
        scalars.append(value + 1 if value < ORDER - 1 else random_scalar(random, ORDER))
    return scalars


# ---------------------------------------------------------------------------------------------
# Batch operations


def encrypt(
    key: PublicKey, messages: Points, random: RandomSource, *, out: Ciphertexts | None = None
) -> Ciphertexts:
    """`(r·G, M + r·Y)` for each message point `M` (which may be the identity)."""
    result = _result(len(messages), out)
    nonces = random_scalars(random, len(messages))
    with key.table.multiply(nonces) as masks:
        group.add(messages, masks, out=result.e)
    group.generator_table().multiply(nonces, out=result.u)
    return result


def encrypt_zero(key: PublicKey, count: int, random: RandomSource) -> Ciphertexts:
    """`count` encryptions of the identity, `(r·G, r·Y)`."""
    nonces = random_scalars(random, count)
    return Ciphertexts(group.generator_table().multiply(nonces), key.table.multiply(nonces))


def rerandomize(
    cts: Ciphertexts, key: PublicKey, random: RandomSource, *, out: Ciphertexts | None = None
) -> Ciphertexts:
    """`(u + s·G, e + s·Y)` with fresh `s` per ciphertext: new bytes, same plaintext."""
    result = _result(len(cts), out)
    nonces = random_scalars(random, len(cts))
    with group.generator_table().multiply(nonces) as shift:
        group.add(cts.u, shift, out=result.u)
        key.table.multiply(nonces, out=shift)
        group.add(cts.e, shift, out=result.e)
    return result


def _remove_layer(cts: Ciphertexts, secret: int, out: Points) -> Points:
    # e - x·u computed as e + (n - x)·u: one multiplication and one addition.
    check_secret(secret)
    with group.multiply(cts.u, ORDER - secret) as unmask:
        return group.add(cts.e, unmask, out=out)


def partial_decrypt(
    cts: Ciphertexts, secret: int, *, out: Ciphertexts | None = None
) -> Ciphertexts:
    """Remove one key holder's layer: `(u, e - x_i·u)`; `u` is kept for the remaining holders."""
    result = _result(len(cts), out)
    _remove_layer(cts, secret, result.e)
    _keep_u(cts, result)
    return result


def decrypt(cts: Ciphertexts, secret: int) -> Points:
    """Full decryption `e - x·u`; identity elements mean the plaintext was "zero"."""
    return _remove_layer(cts, secret, Points(len(cts)))


def decrypt_to_bytes(cts: Ciphertexts, secret: int) -> list[bytes | None]:
    """Full decryption as compressed points, with None where the plaintext is the identity."""
    with decrypt(cts, secret) as plain:
        zero = plain.is_identity()
        present = [i for i, is_zero in enumerate(zero) if not is_zero]
        with plain.take(present) as nonzero:
            encoded = group.encode_points(nonzero)
    result: list[bytes | None] = [None] * len(cts)
    for slot, i in enumerate(present):
        result[i] = encoded[slot * POINT_SIZE : (slot + 1) * POINT_SIZE]
    return result


def partial_decrypt_and_rerandomize(
    cts: Ciphertexts,
    secret: int,
    key: PublicKey,
    random: RandomSource,
    *,
    out: Ciphertexts | None = None,
) -> Ciphertexts:
    """`PartialDecrypt` with `secret`, then `ReRandomize` under `key` (usually the partial key)."""
    result = partial_decrypt(cts, secret, out=out)
    return rerandomize(result, key, random, out=result)


def blind(
    cts: Ciphertexts, secret: int, ph_key: int, *, out: Ciphertexts | None = None
) -> Ciphertexts:
    """Pohlig-Hellman blinding `(k·u, k·(e - x_i·u))` with the same `k` for the whole batch."""
    check_secret(ph_key, "Pohlig-Hellman key")
    result = _result(len(cts), out)
    with Points(len(cts)) as stripped:
        _remove_layer(cts, secret, stripped)
        group.multiply(cts.u, ph_key, out=result.u)
        group.multiply(stripped, ph_key, out=result.e)
    return result


def add(a: Ciphertexts, b: Ciphertexts, *, out: Ciphertexts | None = None) -> Ciphertexts:
    """Componentwise sum: encrypts `M_a + M_b` (under the sum of the randomness)."""
    if len(a) != len(b):
        raise InvalidLengthError(f"batches differ in length: {len(a)} and {len(b)}")
    result = _result(len(a), out)
    group.add(a.u, b.u, out=result.u)
    group.add(a.e, b.e, out=result.e)
    return result


def multiply(cts: Ciphertexts, scalar: int, *, out: Ciphertexts | None = None) -> Ciphertexts:
    """`k·(u, e)` with one `k` for the batch: encrypts `k·M`."""
    result = _result(len(cts), out)
    group.multiply(cts.u, scalar, out=result.u)
    group.multiply(cts.e, scalar, out=result.e)
    return result


def multiply_each(
    cts: Ciphertexts, scalars: Sequence[int], *, out: Ciphertexts | None = None
) -> Ciphertexts:
    """`k_i·(u_i, e_i)` with one scalar per ciphertext."""
    result = _result(len(cts), out)
    group.multiply_each(cts.u, scalars, out=result.u)
    group.multiply_each(cts.e, scalars, out=result.e)
    return result


def negate(cts: Ciphertexts, *, out: Ciphertexts | None = None) -> Ciphertexts:
    """`(-u, -e)`: encrypts `-M`."""
    result = _result(len(cts), out)
    group.negate(cts.u, out=result.u)
    group.negate(cts.e, out=result.e)
    return result


# ---------------------------------------------------------------------------------------------
# Single-ciphertext conveniences (bytes in, bytes out)


def _one(ct: bytes) -> Ciphertexts:
    if len(ct) != CIPHERTEXT_SIZE:
        raise InvalidLengthError(f"a ciphertext is {CIPHERTEXT_SIZE} bytes, got {len(ct)}")
    return decode_ciphertexts(ct)


def _message(message: bytes) -> Points:
    if len(message) != POINT_SIZE:
        raise InvalidLengthError(f"a message point is {POINT_SIZE} bytes, got {len(message)}")
    return group.decode_points(message)


def encrypt_one(key: PublicKey, message: bytes, random: RandomSource) -> bytes:
    """Encrypt one compressed message point."""
    with _message(message) as points, encrypt(key, points, random) as cts:
        return encode_ciphertexts(cts)


def encrypt_zero_one(key: PublicKey, random: RandomSource) -> bytes:
    """One encryption of the identity."""
    with encrypt_zero(key, 1, random) as cts:
        return encode_ciphertexts(cts)


def decrypt_one(ct: bytes, secret: int) -> bytes | None:
    """Fully decrypt one ciphertext; None if the plaintext is the identity."""
    with _one(ct) as cts:
        return decrypt_to_bytes(cts, secret)[0]


def partial_decrypt_one(ct: bytes, secret: int) -> bytes:
    """Remove one layer from one ciphertext."""
    with _one(ct) as cts, partial_decrypt(cts, secret, out=cts):
        return encode_ciphertexts(cts)


def rerandomize_one(ct: bytes, key: PublicKey, random: RandomSource) -> bytes:
    """Re-randomise one ciphertext under `key`."""
    with _one(ct) as cts, rerandomize(cts, key, random, out=cts):
        return encode_ciphertexts(cts)


def blind_one(ct: bytes, secret: int, ph_key: int) -> bytes:
    """Blind one ciphertext (see `blind`)."""
    with _one(ct) as cts, blind(cts, secret, ph_key, out=cts):
        return encode_ciphertexts(cts)


__all__ = [
    "CIPHERTEXT_SIZE",
    "Ciphertexts",
    "KeyPair",
    "PublicKey",
    "add",
    "blind",
    "check_secret",
    "combine_public_keys",
    "decode_ciphertexts",
    "decrypt",
    "decrypt_one",
    "decrypt_to_bytes",
    "encode_ciphertexts",
    "encode_ciphertexts_into",
    "encrypt",
    "encrypt_one",
    "encrypt_zero",
    "encrypt_zero_one",
    "generate_key_pair",
    "multiply",
    "multiply_each",
    "negate",
    "partial_decrypt",
    "partial_decrypt_and_rerandomize",
    "partial_decrypt_one",
    "public_element",
    "random_scalars",
    "rerandomize",
    "rerandomize_one",
    "secret_from_bytes",
    "secret_to_bytes",
]
