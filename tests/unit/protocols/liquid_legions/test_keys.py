"""Ring keys: partial keys are the sums of the later duchies' elements, aggregator last."""

from __future__ import annotations

import pytest

from cmms.crypto import elgamal, group
from cmms.crypto.randomness import SeededRandomSource
from cmms.protocols.liquid_legions.errors import InvalidStageInputError
from cmms.protocols.liquid_legions.keys import ring_keys


def _pairs(count: int) -> list[elgamal.KeyPair]:
    random = SeededRandomSource("ring")
    return [elgamal.generate_key_pair(random) for _ in range(count)]


def test_partial_keys_sum_the_later_elements() -> None:
    pairs = _pairs(4)
    elements = [p.public for p in pairs]
    keys = [ring_keys(elements, i, p.secret) for i, p in enumerate(pairs)]
    full_secret = sum(p.secret for p in pairs) % group.ORDER
    for i, k in enumerate(keys):
        assert k.full_key == elgamal.public_element(full_secret)
        later = sum(p.secret for p in pairs[i + 1 :]) % group.ORDER
        expected = elgamal.public_element(later) if i < 3 else k.full_key
        assert k.partial_key == expected


def test_ring_rejects_wrong_secret_and_small_rings() -> None:
    pairs = _pairs(3)
    elements = [p.public for p in pairs]
    with pytest.raises(InvalidStageInputError):
        ring_keys(elements, 0, pairs[1].secret)
    with pytest.raises(InvalidStageInputError):
        ring_keys(elements[:2], 0, pairs[0].secret)
    with pytest.raises(InvalidStageInputError):
        ring_keys(elements, 3, pairs[0].secret)
