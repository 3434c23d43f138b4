"""EC-ElGamal (spec/llv2.md §1.3-§1.5): correctness properties and rejection of bad input."""

from __future__ import annotations

import functools
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmms.crypto import elgamal, group
from cmms.crypto.errors import (
    IdentityPointError,
    InvalidLengthError,
    InvalidPointError,
    OutOfRangeError,
)
from cmms.crypto.randomness import SeededRandomSource
from cmms.testing import p256_reference as ref

FEW = settings(max_examples=20, deadline=None)
seeds = st.integers(min_value=0, max_value=2**32)
# Small message scalars are enough to exercise the algebra; 0 stands for the identity plaintext.
message_scalars = st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=6)
UNIT = group.hash_to_curve(b"unit_ec_point")


@functools.cache
def unit_table() -> group.FixedBaseTable:
    return group.FixedBaseTable(UNIT)


def messages_of(counts: list[int]) -> group.Points:
    """`c * P` for each count, P = MapToCurve("unit_ec_point") (the LLv2 count encoding)."""
    return unit_table().multiply(counts)


def expected(counts: list[int]) -> list[bytes | None]:
    unit = ref.decode(UNIT)
    return [None if c % ref.N == 0 else ref.encode(ref.multiply(unit, c)) for c in counts]


def three_duchies(seed: int) -> list[elgamal.KeyPair]:
    random = SeededRandomSource(seed)
    return [elgamal.generate_key_pair(random.derive(f"duchy-{i}")) for i in range(3)]


def composite(keys: list[elgamal.KeyPair]) -> elgamal.PublicKey:
    return elgamal.PublicKey(elgamal.combine_public_keys([k.public for k in keys]))


# --- keys -----------------------------------------------------------------------------------


@FEW
@given(seeds)
def test_key_generation(seed: int) -> None:
    pair = elgamal.generate_key_pair(SeededRandomSource(seed))
    assert 1 <= pair.secret < ref.N
    assert pair.public == ref.encode(ref.multiply(ref.G, pair.secret))
    assert pair.secret_bytes[0] != 0  # minimal big-endian, no leading zero
    assert elgamal.secret_from_bytes(pair.secret_bytes) == pair.secret
    assert elgamal.generate_key_pair(SeededRandomSource(seed)) == pair
    assert str(pair.secret) not in repr(pair)


def test_minimal_secret_bytes() -> None:
    assert elgamal.secret_to_bytes(1) == b"\x01"
    assert elgamal.secret_to_bytes(0x1234) == b"\x12\x34"
    assert elgamal.secret_from_bytes(b"\x00\x05") == 5


@FEW
@given(seeds)
def test_composite_key_is_the_sum_of_elements(seed: int) -> None:
    keys = three_duchies(seed)
    total = sum(k.secret for k in keys) % ref.N
    assert composite(keys).element == ref.encode(ref.multiply(ref.G, total))
    assert elgamal.combine_public_keys([keys[0].public]) == keys[0].public


# --- encryption and decryption ----------------------------------------------------------------


@FEW
@given(seeds, message_scalars)
def test_decrypt_inverts_encrypt(seed: int, counts: list[int]) -> None:
    pair = elgamal.generate_key_pair(SeededRandomSource(seed))
    key = elgamal.PublicKey(pair.public)
    random = SeededRandomSource(seed + 1)
    with messages_of(counts) as messages, elgamal.encrypt(key, messages, random) as cts:
        assert len(cts) == len(counts)
        assert elgamal.decrypt_to_bytes(cts, pair.secret) == expected(counts)
        with elgamal.decrypt(cts, pair.secret) as plain:
            assert plain.is_identity() == [c == 0 for c in counts]


@FEW
@given(seeds, message_scalars, st.permutations([0, 1, 2]))
def test_partial_decryptions_equal_full_decryption_under_the_composite_key(
    seed: int, counts: list[int], order: list[int]
) -> None:
    keys = three_duchies(seed)
    key = composite(keys)
    random = SeededRandomSource(seed + 1)
    with messages_of(counts) as messages, elgamal.encrypt(key, messages, random) as cts:
        full = elgamal.decrypt_to_bytes(cts, sum(k.secret for k in keys) % ref.N)
        assert full == expected(counts)
        layered = cts.copy()
        for i in order[:2]:
            elgamal.partial_decrypt(layered, keys[i].secret, out=layered)
        assert group.encode_points(layered.u) == group.encode_points(cts.u)  # u is kept
        assert elgamal.decrypt_to_bytes(layered, keys[order[2]].secret) == full
        layered.close()


@FEW
@given(seeds, st.integers(1, 1000), st.integers(1, 1000))
def test_blinding_keeps_equality_and_inequality(seed: int, a: int, b: int) -> None:
    # W1 and W2 blind with their own PH key; the aggregator removes the last layer.
    w1, w2, agg = three_duchies(seed)
    random = SeededRandomSource(seed + 1)
    k1, k2 = elgamal.random_scalars(random, 2)
    key = composite([w1, w2, agg])
    counts = [a, a, b]
    with messages_of(counts) as messages, elgamal.encrypt(key, messages, random) as cts:
        elgamal.blind(cts, w1.secret, k1, out=cts)
        elgamal.blind(cts, w2.secret, k2, out=cts)
        blinded = elgamal.decrypt_to_bytes(cts, agg.secret)
    assert blinded[0] == blinded[1]
    assert (blinded[0] == blinded[2]) == (a == b)
    unit = ref.decode(UNIT)
    assert blinded[0] == ref.encode(ref.multiply(unit, a * k1 * k2))


@FEW
@given(seeds, message_scalars)
def test_rerandomize_changes_bytes_but_not_plaintext(seed: int, counts: list[int]) -> None:
    keys = three_duchies(seed)
    key = composite(keys)
    secret = sum(k.secret for k in keys) % ref.N
    random = SeededRandomSource(seed + 1)
    with messages_of(counts) as messages, elgamal.encrypt(key, messages, random) as cts:
        before = elgamal.encode_ciphertexts(cts)
        with elgamal.rerandomize(cts, key, random) as fresh:
            after = elgamal.encode_ciphertexts(fresh)
            assert elgamal.decrypt_to_bytes(fresh, secret) == expected(counts)
        for i in range(len(counts)):
            assert before[66 * i : 66 * i + 33] != after[66 * i : 66 * i + 33]
            assert before[66 * i + 33 : 66 * i + 66] != after[66 * i + 33 : 66 * i + 66]


@FEW
@given(seeds, message_scalars)
def test_partial_decrypt_and_rerandomize_under_the_partial_key(
    seed: int, counts: list[int]
) -> None:
    w1, w2, agg = three_duchies(seed)
    full_key = composite([w1, w2, agg])
    partial_key = composite([w2, agg])  # the keys after W1 in the ring
    random = SeededRandomSource(seed + 1)
    with messages_of(counts) as messages, elgamal.encrypt(full_key, messages, random) as cts:
        elgamal.partial_decrypt_and_rerandomize(cts, w1.secret, partial_key, random, out=cts)
        assert elgamal.decrypt_to_bytes(cts, (w2.secret + agg.secret) % ref.N) == expected(counts)


@FEW
@given(seeds, message_scalars, st.integers(0, 20))
def test_homomorphic_operations(seed: int, counts: list[int], k: int) -> None:
    pair = elgamal.generate_key_pair(SeededRandomSource(seed))
    key = elgamal.PublicKey(pair.public)
    random = SeededRandomSource(seed + 1)
    others = [c + 3 for c in counts]
    with (
        messages_of(counts) as m1,
        messages_of(others) as m2,
        elgamal.encrypt(key, m1, random) as c1,
        elgamal.encrypt(key, m2, random) as c2,
    ):
        with elgamal.add(c1, c2) as total:
            assert elgamal.decrypt_to_bytes(total, pair.secret) == expected(
                [a + b for a, b in zip(counts, others, strict=True)]
            )
        with elgamal.multiply(c1, k) as scaled:
            assert elgamal.decrypt_to_bytes(scaled, pair.secret) == expected(
                [k * c for c in counts]
            )
        factors = list(range(1, len(counts) + 1))
        with elgamal.multiply_each(c2, factors) as scaled:
            assert elgamal.decrypt_to_bytes(scaled, pair.secret) == expected(
                [f * c for f, c in zip(factors, others, strict=True)]
            )
        with elgamal.negate(c2) as negated:
            assert elgamal.decrypt_to_bytes(negated, pair.secret) == expected(
                [ref.N - c for c in others]
            )


def test_encrypt_zero_decrypts_to_the_identity() -> None:
    pair = elgamal.generate_key_pair(SeededRandomSource(1))
    key = elgamal.PublicKey(pair.public)
    with elgamal.encrypt_zero(key, 4, SeededRandomSource(2)) as zeros:
        assert elgamal.decrypt_to_bytes(zeros, pair.secret) == [None] * 4
        assert (
            len(set(elgamal.encode_ciphertexts(zeros)[i * 66 : i * 66 + 66] for i in range(4))) == 4
        )
    assert (
        elgamal.decrypt_one(elgamal.encrypt_zero_one(key, SeededRandomSource(3)), pair.secret)
        is None
    )


def test_single_ciphertext_api_and_wire_layout() -> None:
    keys = three_duchies(9)
    key = composite(keys)
    random = SeededRandomSource(5)
    ct = elgamal.encrypt_one(key, UNIT, random)
    assert len(ct) == elgamal.CIPHERTEXT_SIZE
    with elgamal.decode_ciphertexts(ct) as cts:
        assert group.encode_points(cts.u) == ct[:33]
        assert group.encode_points(cts.e) == ct[33:]
    once = elgamal.partial_decrypt_one(ct, keys[0].secret)
    assert once[:33] == ct[:33]
    twice = elgamal.partial_decrypt_one(once, keys[1].secret)
    assert elgamal.decrypt_one(twice, keys[2].secret) == UNIT
    fresh = elgamal.rerandomize_one(ct, key, random)
    assert fresh != ct
    assert elgamal.decrypt_one(fresh, sum(k.secret for k in keys) % ref.N) == UNIT
    blinded = elgamal.blind_one(ct, keys[0].secret, 7)
    rest = (keys[1].secret + keys[2].secret) % ref.N
    assert elgamal.decrypt_one(blinded, rest) == group.point_multiply(UNIT, 7)


def test_strided_ciphertexts_in_registers() -> None:
    keys = three_duchies(4)
    key = composite(keys)
    cts_bytes = [elgamal.encrypt_one(key, UNIT, SeededRandomSource(i)) for i in range(6)]
    registers = b"".join(cts_bytes)  # two 198-byte registers of three ciphertexts each
    with elgamal.decode_ciphertexts(registers, offset=66, stride=198) as middle:
        assert elgamal.encode_ciphertexts(middle) == cts_bytes[1] + cts_bytes[4]
        out = bytearray(len(registers))
        elgamal.encode_ciphertexts_into(middle, out, offset=66, stride=198)
        assert out[66:132] == cts_bytes[1]
        assert out[264:330] == cts_bytes[4]


def test_public_key_pickles_by_element() -> None:
    key = elgamal.PublicKey(group.base_multiply(77))
    copy = pickle.loads(pickle.dumps(key))
    assert copy == key
    assert copy.table.multiply_one(2) == group.base_multiply(154)


def test_random_scalars_are_in_range_and_replayable() -> None:
    values = elgamal.random_scalars(SeededRandomSource(8), 50)
    assert all(1 <= v < ref.N for v in values)
    assert len(set(values)) == 50
    assert elgamal.random_scalars(SeededRandomSource(8), 50) == values


# --- bad input ------------------------------------------------------------------------------


def valid_ct() -> bytes:
    key = elgamal.PublicKey(group.base_multiply(3))
    return elgamal.encrypt_one(key, UNIT, SeededRandomSource(0))


@pytest.mark.parametrize("length", [0, 33, 65, 67, 131])
def test_ciphertext_wrong_length(length: int) -> None:
    data = (valid_ct() * 2)[:length]
    with pytest.raises(InvalidLengthError):
        elgamal.decrypt_one(data, 5)
    if length % 66:
        with pytest.raises(InvalidLengthError):
            elgamal.decode_ciphertexts(data)


def test_ciphertext_with_invalid_or_identity_points() -> None:
    ct = valid_ct()
    with pytest.raises(IdentityPointError):
        elgamal.decode_ciphertexts(bytes(33) + ct[33:])
    with pytest.raises(IdentityPointError):
        elgamal.decode_ciphertexts(ct[:33] + bytes(33))
    with pytest.raises(InvalidPointError):
        elgamal.decode_ciphertexts(ct[:33] + b"\x05" + ct[34:])
    with pytest.raises(InvalidPointError):
        elgamal.decode_ciphertexts(b"\x02" + b"\xff" * 32 + ct[33:])


@pytest.mark.parametrize("secret", [0, -1, ref.N, ref.N + 1])
def test_out_of_range_secrets(secret: int) -> None:
    with elgamal.decode_ciphertexts(valid_ct()) as cts:
        with pytest.raises(OutOfRangeError):
            elgamal.decrypt(cts, secret)
        with pytest.raises(OutOfRangeError):
            elgamal.partial_decrypt(cts, secret)
        with pytest.raises(OutOfRangeError):
            elgamal.blind(cts, secret, 5)
        with pytest.raises(OutOfRangeError):
            elgamal.blind(cts, 5, secret)
    with pytest.raises(OutOfRangeError):
        elgamal.KeyPair.from_secret(secret)
    with pytest.raises(OutOfRangeError):
        elgamal.public_element(secret)


def test_bad_secret_bytes() -> None:
    with pytest.raises(InvalidLengthError):
        elgamal.secret_from_bytes(b"")
    with pytest.raises(InvalidLengthError):
        elgamal.secret_from_bytes(b"\x01" * 33)
    with pytest.raises(OutOfRangeError):
        elgamal.secret_from_bytes(b"\x00")
    with pytest.raises(OutOfRangeError):
        elgamal.secret_from_bytes(ref.N.to_bytes(32, "big"))


def test_bad_public_keys() -> None:
    with pytest.raises(IdentityPointError):
        elgamal.PublicKey(bytes(33))
    with pytest.raises(InvalidLengthError):
        elgamal.PublicKey(group.GENERATOR + b"\x00")
    with pytest.raises(InvalidPointError):
        elgamal.PublicKey(b"\x02" + b"\xff" * 32)
    a = group.base_multiply(5)
    with pytest.raises(IdentityPointError):
        elgamal.combine_public_keys([a, group.point_negate(a)])
    with pytest.raises(InvalidLengthError):
        elgamal.combine_public_keys([])


def test_bad_messages_and_batch_shapes() -> None:
    key = elgamal.PublicKey(group.base_multiply(3))
    with pytest.raises(InvalidLengthError):
        elgamal.encrypt_one(key, UNIT[:32], SeededRandomSource(0))
    with pytest.raises(IdentityPointError):
        elgamal.encrypt_one(key, bytes(33), SeededRandomSource(0))
    with (
        elgamal.decode_ciphertexts(valid_ct() * 2) as two,
        elgamal.decode_ciphertexts(valid_ct()) as one,
    ):
        with pytest.raises(InvalidLengthError):
            elgamal.add(two, one)
        with pytest.raises(InvalidLengthError):
            elgamal.rerandomize(two, key, SeededRandomSource(0), out=one)
        with pytest.raises(InvalidLengthError):
            elgamal.multiply_each(two, [1])
        with pytest.raises(OutOfRangeError):
            elgamal.multiply(two, ref.N)
    with pytest.raises(InvalidLengthError):
        elgamal.Ciphertexts(group.Points(1), group.Points(2))
