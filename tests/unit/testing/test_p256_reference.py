"""The pure-Python P-256 reference is itself consistent with the curve's published facts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmms.testing import p256_reference as ref

scalars = st.integers(min_value=0, max_value=ref.N - 1)


def test_generator_is_on_the_curve_and_has_order_n() -> None:
    assert ref.is_on_curve(ref.G)
    assert ref.multiply(ref.G, ref.N) is None
    assert ref.multiply(ref.G, ref.N - 1) == ref.negate(ref.G)


def test_known_multiples_of_the_generator() -> None:
    # 2G and 3G from the SEC/NIST P-256 test data.
    assert ref.multiply(ref.G, 2) == (
        0x7CF27B188D034F7E8A52380304B51AC3C08969E277F21B35A60B48FC47669978,
        0x07775510DB8ED040293D9AC69F7430DBBA7DADE63CE982299E04B79D227873D1,
    )
    assert ref.multiply(ref.G, 3) == (
        0x5ECBE4D1A6330A44C8F7EF951D4BF165E6C6B721EFADA985FB41661BC6E7FD6C,
        0x8734640C4998FF7E374B06CE1A64A2ECD82AB036384FB83D9A79B127A27D5032,
    )


@settings(max_examples=20, deadline=None)
@given(scalars, scalars)
def test_multiplication_distributes_over_addition(a: int, b: int) -> None:
    pa, pb = ref.multiply(ref.G, a), ref.multiply(ref.G, b)
    assert ref.add(pa, pb) == ref.multiply(ref.G, (a + b) % ref.N)
    assert ref.is_on_curve(ref.add(pa, pb))


@settings(max_examples=20, deadline=None)
@given(st.integers(min_value=1, max_value=ref.N - 1))
def test_encoding_round_trip(k: int) -> None:
    point = ref.multiply(ref.G, k)
    assert ref.decode(ref.encode(point)) == point


def test_identity_rules() -> None:
    assert ref.add(None, ref.G) == ref.G
    assert ref.add(ref.G, ref.negate(ref.G)) is None
    assert ref.add(ref.G, ref.G) == ref.multiply(ref.G, 2)
    assert ref.multiply(None, 5) is None
    with pytest.raises(ValueError):
        ref.encode(None)
    with pytest.raises(ValueError):
        ref.decode(b"\x04" + bytes(32))
