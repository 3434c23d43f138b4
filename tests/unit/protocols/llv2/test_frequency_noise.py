"""Frequency-noise tuples: the reference counts (176 / 44) and the three tuple shapes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from cmms.crypto import elgamal
from cmms.crypto.randomness import SeededRandomSource
from cmms.dp import PrivacyParams
from cmms.protocols.liquid_legions import named_points
from cmms.protocols.liquid_legions.noise import NoiseMechanism, noiser
from cmms.protocols.liquid_legions.parallel import ExecutionOptions
from cmms.protocols.liquid_legions.records import TUPLE_SIZE
from cmms.protocols.llv2.frequency_noise import frequency_noise_tuples, noise_tuple_count

VECTORS = json.loads((Path(__file__).parents[3] / "vectors" / "llv2_protocol.json").read_text())[
    "frequency_noise"
]


@pytest.mark.parametrize(
    ("mechanism", "name"),
    [
        (NoiseMechanism.GEOMETRIC, "geometric"),
        (NoiseMechanism.DISCRETE_GAUSSIAN, "discrete_gaussian"),
    ],
)
def test_tuple_counts(mechanism: NoiseMechanism, name: str) -> None:
    frequency = noiser(mechanism, PrivacyParams(VECTORS["epsilon"], VECTORS["delta"]), 3, 2)
    assert frequency.offset == VECTORS[name]["offset"]
    assert noise_tuple_count(frequency, VECTORS["max_frequency"]) == VECTORS[name]["tuples"]


def test_every_tuple_has_one_of_the_three_shapes() -> None:
    random = SeededRandomSource("freq")
    flag_pair = elgamal.generate_key_pair(random)
    full_pair = elgamal.generate_key_pair(random)
    frequency = noiser(NoiseMechanism.GEOMETRIC, PrivacyParams(1, 1), 3, 2)
    payload = frequency_noise_tuples(
        frequency, 10, flag_pair.public, full_pair.public, random, ExecutionOptions(2, 32)
    )
    assert len(payload) == 176 * TUPLE_SIZE
    flags = [
        elgamal.decrypt_to_bytes(
            elgamal.decode_ciphertexts(payload, offset=66 * f, stride=TUPLE_SIZE),
            flag_pair.secret,
        )
        for f in range(3)
    ]
    counts = elgamal.decrypt_to_bytes(
        elgamal.decode_ciphertexts(payload, offset=198, stride=TUPLE_SIZE), full_pair.secret
    )
    multiples = named_points.unit_multiples(10)
    shapes: Counter[str] = Counter()
    for a, b, c, count in zip(*flags, counts, strict=True):
        if a is None and b is not None and c is not None:
            assert count in multiples and b != c
            shapes[f"count{multiples.index(count) + 1}"] += 1
        elif a is None and b is None:
            assert c is not None and c == count
            shapes["padding"] += 1
        else:
            assert None not in (a, b, c, count) and len({a, b, c, count}) == 4
            shapes["destroyed"] += 1
    assert sum(shapes.values()) == 176
    for f in range(1, 11):
        assert 0 <= shapes[f"count{f}"] <= 2 * frequency.offset
