"""Sketch encryption: wire layout, FLAGGED_KEY destroyed registers, clamped count points."""

from __future__ import annotations

import numpy as np
import pytest

from cmms.crypto import elgamal, group
from cmms.crypto.randomness import SeededRandomSource
from cmms.sketch import LiquidLegionsSketch, ReachOnlyLiquidLegionsSketch, SketchParameterError
from cmms.sketch.encryption import (
    REACH_ONLY_REGISTER_SIZE,
    REGISTER_SIZE,
    encrypt_reach_only_sketch,
    encrypt_sketch,
)

# llv2.md §1.2 (derived by the spec's port): MapToCurve("unit_ec_point").
UNIT_POINT = bytes.fromhex("0295eff36ee6834b476823392ce1f31aeda2c10edf2fdb5a4b2a708a600f18876f")
DESTROYED = bytes.fromhex("02d81de426f38abb05329fce20be825d7cf5205dd08f079a803a65fc2310fc6fd8")


@pytest.fixture(scope="module")
def composite() -> tuple[elgamal.PublicKey, int]:
    random = SeededRandomSource("duchies")
    pairs = [elgamal.generate_key_pair(random) for _ in range(3)]
    key = elgamal.PublicKey(elgamal.combine_public_keys([p.public for p in pairs]))
    return key, sum(p.secret for p in pairs) % group.ORDER


def _field(blob: bytes, field: int, secret: int) -> list[bytes | None]:
    cts = elgamal.decode_ciphertexts(blob, offset=66 * field, stride=REGISTER_SIZE)
    return elgamal.decrypt_to_bytes(cts, secret)


def test_rf_registers_decrypt_to_the_expected_points(
    composite: tuple[elgamal.PublicKey, int],
) -> None:
    key, secret = composite
    sketch = LiquidLegionsSketch(
        indexes=np.array([1, 2, 3, 5]),
        keys=np.array([112, 0, 445, 556]),  # proto values: key + 1, 0 = destroyed
        counts=np.array([5, 1, 12, 10]),
    )
    blob = encrypt_sketch(sketch, key, max_frequency=10, random=SeededRandomSource(1))
    assert len(blob) == 4 * REGISTER_SIZE
    assert _field(blob, 0, secret) == [group.hash_to_curve(str(i).encode()) for i in (1, 2, 3, 5)]
    assert _field(blob, 1, secret) == [
        group.hash_to_curve(b"112"),
        DESTROYED,
        group.hash_to_curve(b"445"),
        group.hash_to_curve(b"556"),
    ]
    # Counts above F = 10 are clamped to F + 1 = 11; destroyed registers carry K_destroyed.
    assert _field(blob, 2, secret) == [
        group.point_multiply(UNIT_POINT, 5),
        DESTROYED,
        group.point_multiply(UNIT_POINT, 11),
        group.point_multiply(UNIT_POINT, 10),
    ]


def test_encryption_is_randomised(composite: tuple[elgamal.PublicKey, int]) -> None:
    key, _ = composite
    sketch = LiquidLegionsSketch(np.array([7]), np.array([3]), np.array([1]))
    first = encrypt_sketch(sketch, key, 1, SeededRandomSource(1))
    second = encrypt_sketch(sketch, key, 1, SeededRandomSource(2))
    assert first != second
    assert first == encrypt_sketch(sketch, key, 1, SeededRandomSource(1))


def test_reach_only_layout(composite: tuple[elgamal.PublicKey, int]) -> None:
    key, secret = composite
    sketch = ReachOnlyLiquidLegionsSketch(np.array([0, 17, 99_999]))
    blob = encrypt_reach_only_sketch(sketch, key, SeededRandomSource(3))
    assert len(blob) == 3 * REACH_ONLY_REGISTER_SIZE
    decrypted = elgamal.decrypt_to_bytes(elgamal.decode_ciphertexts(blob), secret)
    assert decrypted == [group.hash_to_curve(str(i).encode()) for i in (0, 17, 99_999)]


def test_empty_sketches_and_bad_inputs(composite: tuple[elgamal.PublicKey, int]) -> None:
    key, _ = composite
    empty = LiquidLegionsSketch(np.array([], dtype=np.int64), np.array([]), np.array([]))
    assert encrypt_sketch(empty, key, 5, SeededRandomSource(1)) == b""
    bad = LiquidLegionsSketch(np.array([1]), np.array([2]), np.array([0]))
    with pytest.raises(SketchParameterError):
        encrypt_sketch(bad, key, 5, SeededRandomSource(1))
    with pytest.raises(SketchParameterError):
        encrypt_sketch(empty, key, 0, SeededRandomSource(1))
