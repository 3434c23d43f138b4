"""EDP-side encryption of Liquid Legions sketches (llv2.md §3.3-§3.4).

Every field is EC-ElGamal encrypted under the composite duchy key. Plaintext points are
deterministic (the same register index or key maps to the same point at every EDP, which is what
lets the MPC match registers); only the encryption randomness differs. Wire layout, no header:
R&F registers are `index_ct || key_ct || count_ct` (198 bytes), reach-only registers `index_ct`
(66 bytes).
"""

from __future__ import annotations

from cmms.crypto import elgamal, group
from cmms.crypto.elgamal import CIPHERTEXT_SIZE, PublicKey
from cmms.crypto.randomness import RandomSource
from cmms.sketch.errors import SketchParameterError
from cmms.sketch.liquid_legions import (
    DESTROYED_KEY,
    LiquidLegionsSketch,
    ReachOnlyLiquidLegionsSketch,
)

REGISTER_SIZE = 3 * CIPHERTEXT_SIZE
REACH_ONLY_REGISTER_SIZE = CIPHERTEXT_SIZE
UNIT_POINT_SEED = b"unit_ec_point"
DESTROYED_KEY_SEED = b"destroyed_register_key"


def _hash_decimal(values: list[int], cache: dict[int, bytes]) -> list[bytes]:
    # Integers are hashed through their decimal ASCII string, e.g. index 17 -> "17".
    for value in values:
        if value not in cache:
            cache[value] = group.hash_to_curve(str(value).encode())
    return [cache[value] for value in values]


def _encrypt_into(
    messages: list[bytes],
    key: PublicKey,
    random: RandomSource,
    out: bytearray,
    offset: int,
    stride: int,
) -> None:
    with (
        group.decode_points(b"".join(messages)) as points,
        elgamal.encrypt(key, points, random) as cts,
    ):
        elgamal.encode_ciphertexts_into(cts, out, offset=offset, stride=stride)


def encrypt_sketch(
    sketch: LiquidLegionsSketch,
    key: PublicKey,
    max_frequency: int,
    random: RandomSource,
) -> bytes:
    """The 198-byte-per-register payload of an R&F sketch.

    Counts are clamped to `max_frequency + 1` and encoded as `c·P`, `P = MapToCurve("unit_ec_point")`.
    Destroyed registers use the FLAGGED_KEY layout: key and count both encrypt `K_destroyed`.
    """
    if max_frequency < 1:
        raise SketchParameterError(f"maximum frequency must be at least 1, got {max_frequency}")
    indexes = [int(i) for i in sketch.indexes]
    keys = [int(k) for k in sketch.keys]
    counts = [int(c) for c in sketch.counts]
    if any(c < 1 for c in counts):
        raise SketchParameterError("every register count must be at least 1")
    destroyed = group.hash_to_curve(DESTROYED_KEY_SEED)
    unit = group.hash_to_curve(UNIT_POINT_SEED)
    multiples = {c: group.point_multiply(unit, c) for c in range(1, max_frequency + 2)}
    cache: dict[int, bytes] = {}
    index_points = _hash_decimal(indexes, cache)
    key_points = [
        destroyed if k == DESTROYED_KEY else point
        for k, point in zip(keys, _hash_decimal(keys, cache), strict=True)
    ]
    count_points = [
        destroyed if k == DESTROYED_KEY else multiples[min(c, max_frequency + 1)]
        for k, c in zip(keys, counts, strict=True)
    ]
    out = bytearray(REGISTER_SIZE * len(indexes))
    for field, messages in enumerate((index_points, key_points, count_points)):
        _encrypt_into(messages, key, random, out, field * CIPHERTEXT_SIZE, REGISTER_SIZE)
    return bytes(out)


def encrypt_reach_only_sketch(
    sketch: ReachOnlyLiquidLegionsSketch, key: PublicKey, random: RandomSource
) -> bytes:
    """The 66-byte-per-register payload of a reach-only sketch: `Enc(MapToCurve(str(index)))`."""
    indexes = [int(i) for i in sketch.indexes]
    out = bytearray(REACH_ONLY_REGISTER_SIZE * len(indexes))
    _encrypt_into(_hash_decimal(indexes, {}), key, random, out, 0, REACH_ONLY_REGISTER_SIZE)
    return bytes(out)
