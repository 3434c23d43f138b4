"""The OpenSSL P-256 backend agrees with the pure-Python reference and rejects bad input."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmms.crypto import group
from cmms.crypto.errors import (
    IdentityPointError,
    InvalidLengthError,
    InvalidPointError,
    OutOfRangeError,
)
from cmms.testing import p256_reference as ref

VECTORS = Path(__file__).parents[2] / "vectors" / "hash_to_curve.json"

scalars = st.integers(min_value=1, max_value=ref.N - 1)
edge_scalars = st.sampled_from([0, 1, 2, ref.N - 2, ref.N - 1]) | st.integers(0, ref.N - 1)
FEW = settings(max_examples=25, deadline=None)


def point_of(k: int) -> ref.AffinePoint:
    return ref.multiply(ref.G, k)


def enc(k: int) -> bytes:
    return ref.encode(point_of(k))


def encode_or_none(points: group.Points) -> list[bytes | None]:
    """Per-point encoding with None for the identity (test helper)."""
    zero = points.is_identity()
    result: list[bytes | None] = []
    for i, is_zero in enumerate(zero):
        if is_zero:
            result.append(None)
        else:
            with points.take([i]) as one:
                result.append(group.encode_points(one))
    return result


def ref_encode_or_none(point: ref.AffinePoint) -> bytes | None:
    return None if point is None else ref.encode(point)


# --- constants and encodings ----------------------------------------------------------------


def test_constants_match_the_reference_curve() -> None:
    assert group.ORDER == ref.N
    assert group.FIELD_PRIME == ref.P
    assert ref.encode(ref.G) == group.GENERATOR
    assert group.base_multiply(1) == group.GENERATOR


def test_known_double_of_the_generator() -> None:
    # 2G from the SEC/NIST P-256 test data.
    expected_x = "7cf27b188d034f7e8a52380304b51ac3c08969e277f21b35a60b48fc47669978"
    assert group.base_multiply(2) == bytes.fromhex("03" + expected_x)


@FEW
@given(scalars)
def test_decode_encode_round_trip(k: int) -> None:
    encoded = enc(k)
    with group.decode_points(encoded * 3) as points:
        assert len(points) == 3
        assert group.encode_points(points) == encoded * 3
        assert points.is_identity() == [False] * 3


def test_strided_decode_and_encode() -> None:
    records = b"".join(b"\xaa" * 5 + enc(k) + b"\xbb" * 2 for k in (3, 4, 5))
    with group.decode_points(records, offset=5, stride=40) as points:
        assert group.encode_points(points) == enc(3) + enc(4) + enc(5)
        out = bytearray(records)
        out[5:38] = bytes(33)
        group.encode_points_into(points, out, offset=5, stride=40)
        assert bytes(out) == records


def test_empty_batches() -> None:
    with group.decode_points(b"") as points:
        assert len(points) == 0
        assert group.encode_points(points) == b""
        assert len(group.add(points, points)) == 0


# --- arithmetic against the reference ---------------------------------------------------------


@FEW
@given(edge_scalars, edge_scalars)
def test_add_subtract_negate_agree_with_reference(a: int, b: int) -> None:
    pa, pb = point_of(a), point_of(b)
    with group.Points(2) as xs, group.Points(2) as ys:
        # Build the inputs from scalars so the identity (scalar 0) is included.
        group.generator_table().multiply([a, b], out=xs)
        group.generator_table().multiply([b, b], out=ys)
        assert encode_or_none(xs) == [ref_encode_or_none(pa), ref_encode_or_none(pb)]
        with group.add(xs, ys) as total:
            assert encode_or_none(total) == [
                ref_encode_or_none(ref.add(pa, pb)),
                ref_encode_or_none(ref.add(pb, pb)),
            ]
        with group.subtract(xs, ys) as difference:
            assert encode_or_none(difference) == [
                ref_encode_or_none(ref.add(pa, ref.negate(pb))),
                None,
            ]
        with group.negate(xs) as negated:
            assert encode_or_none(negated) == [
                ref_encode_or_none(ref.negate(pa)),
                ref_encode_or_none(ref.negate(pb)),
            ]


@FEW
@given(scalars, edge_scalars, edge_scalars)
def test_variable_base_multiplication_agrees_with_reference(base: int, k1: int, k2: int) -> None:
    q = point_of(base)
    with group.decode_points(ref.encode(q) * 2) as points:
        with group.multiply(points, k1) as product:
            assert encode_or_none(product) == [ref_encode_or_none(ref.multiply(q, k1))] * 2
        with group.multiply_each(points, [k1, k2]) as product:
            assert encode_or_none(product) == [
                ref_encode_or_none(ref.multiply(q, k1)),
                ref_encode_or_none(ref.multiply(q, k2)),
            ]


@FEW
@given(scalars, edge_scalars)
def test_fixed_base_table_agrees_with_reference(base: int, k: int) -> None:
    q = point_of(base)
    table = group.FixedBaseTable(ref.encode(q))
    with table.multiply([k, 1]) as product:
        assert encode_or_none(product) == [ref_encode_or_none(ref.multiply(q, k)), ref.encode(q)]


@FEW
@given(edge_scalars)
def test_generator_table_agrees_with_reference(k: int) -> None:
    with group.generator_table().multiply([k]) as product:
        assert encode_or_none(product) == [ref_encode_or_none(point_of(k))]


def test_identity_edge_cases() -> None:
    with group.Points.identities(2) as zero, group.decode_points(enc(7) * 2) as seven:
        assert zero.is_identity() == [True, True]
        with group.multiply(zero, 12345) as still_zero:
            assert still_zero.is_identity() == [True, True]
        with group.add(zero, seven) as sum_:
            assert group.encode_points(sum_) == enc(7) * 2
        with group.multiply(seven, 0) as nothing:
            assert nothing.is_identity() == [True, True]
        with group.multiply(seven, ref.N - 1) as minus_seven:
            assert group.encode_points(minus_seven) == ref.encode(ref.negate(point_of(7))) * 2
        with group.add(seven, seven) as doubled:
            assert group.encode_points(doubled) == enc(14) * 2
        assert group.equal(seven, seven) == [True, True]
        assert group.equal(seven, zero) == [False, False]


def test_outputs_may_alias_inputs() -> None:
    with group.decode_points(enc(3) + enc(5)) as points, group.decode_points(enc(2) * 2) as twos:
        group.multiply(points, 10, out=points)
        assert group.encode_points(points) == enc(30) + enc(50)
        group.multiply_each(points, [2, 3], out=points)
        assert group.encode_points(points) == enc(60) + enc(150)
        group.add(points, twos, out=points)
        assert group.encode_points(points) == enc(62) + enc(152)
        group.subtract(points, twos, out=points)
        group.negate(points, out=points)
        assert group.encode_points(points) == enc(ref.N - 60) + enc(ref.N - 150)


def test_batch_helpers_take_concat_copy() -> None:
    with group.decode_points(enc(1) + enc(2) + enc(3)) as points:
        with points.take([2, 0, 2]) as picked:
            assert group.encode_points(picked) == enc(3) + enc(1) + enc(3)
        with group.Points.concat([points, points]) as joined:
            assert group.encode_points(joined) == (enc(1) + enc(2) + enc(3)) * 2
        duplicate = points.copy()
        group.negate(points, out=points)
        assert group.encode_points(duplicate) == enc(1) + enc(2) + enc(3)
        duplicate.close()
        assert len(duplicate) == 0
        with pytest.raises(OutOfRangeError):
            points.take([3])


def test_single_point_helpers() -> None:
    assert group.point_add(enc(2), enc(3)) == enc(5)
    assert group.point_subtract(enc(2), enc(3)) == enc(ref.N - 1)
    assert group.point_negate(enc(4)) == enc(ref.N - 4)
    assert group.point_multiply(enc(4), 5) == enc(20)
    assert group.sum_points([enc(1), enc(2), enc(3)]) == enc(6)
    assert group.sum_points([enc(9)]) == enc(9)
    assert group.is_valid_point(enc(9))
    assert not group.is_valid_point(bytes(33))
    assert not group.is_valid_point(enc(9)[:32])
    with pytest.raises(IdentityPointError):
        group.point_add(enc(2), enc(ref.N - 2))
    with pytest.raises(IdentityPointError):
        group.sum_points([enc(2), enc(ref.N - 2)])


# --- hash-to-curve --------------------------------------------------------------------------


def test_hash_to_curve_known_answers() -> None:
    vectors = json.loads(VECTORS.read_text())["vectors"]
    assert {v["input"] for v in vectors} >= {
        "unit_ec_point",
        "destroyed_register_key",
        "blinded_histogram_noise_register_key",
        "publisher_noise_register_id",
        "padding_noise_register_id",
        "flag_zero_base",
    }
    for vector in vectors:
        message = vector["input"].encode()
        assert group.hash_to_curve(message).hex() == vector["point"], vector["input"]
        assert ref.hash_to_curve_tries(message) == vector["tries"]
    with group.hash_to_points([v["input"].encode() for v in vectors]) as points:
        assert group.encode_points(points).hex() == "".join(v["point"] for v in vectors)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=40))
def test_hash_to_curve_agrees_with_reference(data: bytes) -> None:
    hashed = group.hash_to_curve(data)
    assert hashed == ref.encode(ref.hash_to_curve(data))
    assert hashed[0] == 0x02  # the chosen y is always even


# --- bad input ------------------------------------------------------------------------------


def non_curve_x() -> bytes:
    x = 1
    while ref.sqrt_mod_p((x**3 + ref.A * x + ref.B) % ref.P) is not None:
        x += 1
    return b"\x02" + x.to_bytes(32, "big")


@pytest.mark.parametrize(
    ("encoded", "error"),
    [
        (bytes(33), IdentityPointError),
        (b"\x00" + bytes(32)[:-1] + b"\x01", InvalidPointError),
        (b"\x04" + enc(5)[1:], InvalidPointError),
        (b"\x01" + enc(5)[1:], InvalidPointError),
        (b"\x02" + ref.P.to_bytes(32, "big"), InvalidPointError),
        (b"\x03" + b"\xff" * 32, InvalidPointError),
        (non_curve_x(), InvalidPointError),
    ],
)
def test_decode_rejects_bad_points(encoded: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        group.decode_points(enc(1) + encoded)


@pytest.mark.parametrize("length", [1, 32, 34, 65, 67])
def test_decode_rejects_bad_lengths(length: int) -> None:
    with pytest.raises(InvalidLengthError):
        group.decode_points((enc(1) * 3)[:length])


def test_decode_rejects_bad_layout() -> None:
    with pytest.raises(OutOfRangeError):
        group.decode_points(enc(1) * 2, offset=1, stride=33)
    with pytest.raises(OutOfRangeError):
        group.decode_points(enc(1), stride=32)


def test_encode_refuses_the_identity() -> None:
    with group.decode_points(enc(1) + enc(2)) as points, group.negate(points) as negated:
        with group.add(points, negated) as zero, pytest.raises(IdentityPointError):
            group.encode_points(zero)
        out = bytearray(66)
        with pytest.raises(InvalidLengthError):
            group.encode_points_into(points, out, stride=66)  # one record, two points


@pytest.mark.parametrize("bad", [-1, ref.N, ref.N + 5, 2**256])
def test_out_of_range_scalars(bad: int) -> None:
    with group.decode_points(enc(3)) as points:
        with pytest.raises(OutOfRangeError):
            group.multiply(points, bad)
        with pytest.raises(OutOfRangeError):
            group.multiply_each(points, [bad])
        with pytest.raises(OutOfRangeError):
            group.generator_table().multiply([bad])


def test_length_mismatches() -> None:
    with group.decode_points(enc(3)) as one, group.decode_points(enc(3) * 2) as two:
        with pytest.raises(InvalidLengthError):
            group.add(one, two)
        with pytest.raises(InvalidLengthError):
            group.multiply_each(two, [1])
        with pytest.raises(InvalidLengthError):
            group.negate(two, out=one)


def test_table_without_openssl_precomputation_falls_back_to_variable_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(group, "_precompute_mult", None)
    table = group.FixedBaseTable(enc(5))
    assert table._fallback_base is not None
    with table.multiply([0, 1, 7]) as product:
        assert encode_or_none(product) == [None, enc(5), enc(35)]
    with pytest.raises(OutOfRangeError):
        table.multiply([ref.N])


def test_table_base_must_be_a_valid_point() -> None:
    with pytest.raises(IdentityPointError):
        group.FixedBaseTable(bytes(33))
    with pytest.raises(InvalidLengthError):
        group.FixedBaseTable(enc(3)[:20])
    with pytest.raises(InvalidPointError):
        group.FixedBaseTable(non_curve_x())


# --- lifetime, pickling, processes, threads ------------------------------------------------


def test_points_are_not_picklable_but_tables_are() -> None:
    with group.decode_points(enc(3)) as points, pytest.raises(TypeError):
        pickle.dumps(points)
    table = pickle.loads(pickle.dumps(group.FixedBaseTable(enc(3))))
    assert table.base == enc(3)
    assert table.multiply_one(4) == enc(12)


def _child_work(base: bytes) -> bytes:
    return group.FixedBaseTable(base).multiply_one(6) + group.base_multiply(7)


def test_usable_in_forked_worker_processes() -> None:
    group.base_multiply(5)  # make sure the parent has initialised its state before forking
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:
        results = pool.map(_child_work, [enc(2), enc(3)])
    assert results == [enc(12) + enc(7), enc(18) + enc(7)]


def test_threads_get_their_own_scratch_state() -> None:
    table = group.FixedBaseTable(enc(11))
    results: dict[int, bytes] = {}

    def work(i: int) -> None:
        with table.multiply(list(range(1, 40))) as points, group.multiply(points, i) as scaled:
            results[i] = group.encode_points(scaled)

    threads = [threading.Thread(target=work, args=(i,)) for i in (2, 3, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in (2, 3, 5):
        assert results[i] == b"".join(enc(11 * j * i) for j in range(1, 40))
