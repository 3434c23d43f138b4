"""Frequency-noise tuples one contributor adds (spec §5.5).

Exactly Q = 2·o_freq·(F+1) tuples `flag_a || flag_b || flag_c || count`, flags under the
contributor's partial key (the aggregator's is the full key), counts under the full key:
`(0, R1, R2, f·P)` per drawn count for f = 1..F, destroyed-looking `(R1, R2, R3, R4)`, and padding
`(0, 0, R, R)`.
"""

from __future__ import annotations

from cmms.crypto.group import ORDER
from cmms.crypto.randomness import RandomSource, random_scalar
from cmms.protocols.liquid_legions import named_points
from cmms.protocols.liquid_legions.encryption import IDENTITY, encrypt_records
from cmms.protocols.liquid_legions.errors import InvalidStageInputError
from cmms.protocols.liquid_legions.noise import Noiser
from cmms.protocols.liquid_legions.parallel import ExecutionOptions

Tuple = tuple[bytes, bytes, bytes, bytes]


def noise_tuple_count(noiser: Noiser, max_frequency: int) -> int:
    """Q = 2·o_freq·(F+1)."""
    return 2 * noiser.offset * (max_frequency + 1)


def frequency_noise_plaintexts(
    noiser: Noiser, max_frequency: int, random: RandomSource
) -> list[Tuple]:
    """The Q plaintext tuples (IDENTITY = zero) of one contributor."""

    def fresh() -> bytes:
        return named_points.random_point("", random_scalar(random, ORDER))

    total = noise_tuple_count(noiser, max_frequency)
    draws = noiser.draw(random.derive("frequency"), max_frequency + 1)
    multiples = named_points.unit_multiples(max_frequency)
    tuples: list[Tuple] = []
    for frequency, drawn in enumerate(draws[:-1], start=1):
        for _ in range(drawn):
            tuples.append((IDENTITY, fresh(), fresh(), multiples[frequency - 1]))
    for _ in range(draws[-1]):
        tuples.append((fresh(), fresh(), fresh(), fresh()))
    padding = total - len(tuples)
    if padding < 0:  # impossible: every draw is at most 2·offset
        raise InvalidStageInputError(f"frequency noise exceeds the {total} reserved tuples")
    for _ in range(padding):
        value = fresh()
        tuples.append((IDENTITY, IDENTITY, value, value))
    return tuples


def frequency_noise_tuples(
    noiser: Noiser,
    max_frequency: int,
    flag_key: bytes,
    full_key: bytes,
    random: RandomSource,
    options: ExecutionOptions,
) -> bytes:
    """The Q encrypted 264-byte tuples."""
    plain = frequency_noise_plaintexts(noiser, max_frequency, random.derive("plaintexts"))
    fields = [[t[f] for t in plain] for f in range(4)]
    keys = [flag_key, flag_key, flag_key, full_key]
    return encrypt_records(fields, keys, random.derive("encrypt"), "frequency_noise", options)
