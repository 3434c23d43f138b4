"""Per-computation key material of one duchy (spec §2).

The ring lists every duchy's public element with all non-aggregators first and the aggregator
last. The full key is the sum of all elements; a duchy's partial key is the sum of the elements
of every duchy after it, i.e. of the layers that remain once it removed its own. The aggregator's
partial key is the full key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cmms.crypto import elgamal
from cmms.protocols.liquid_legions.errors import InvalidStageInputError

MINIMUM_DUCHIES = 3


@dataclass(frozen=True)
class DuchyKeys:
    """One duchy's secret plus the combined public keys it encrypts and re-randomises under."""

    secret: int = field(repr=False)
    full_key: bytes
    partial_key: bytes

    def __post_init__(self) -> None:
        elgamal.check_secret(self.secret)


def ring_keys(elements: Sequence[bytes], position: int, secret: int) -> DuchyKeys:
    """The keys of the duchy at `position` of the ring `elements` (aggregator last)."""
    if len(elements) < MINIMUM_DUCHIES:
        raise InvalidStageInputError(
            f"Liquid Legions needs at least {MINIMUM_DUCHIES} duchies, got {len(elements)}"
        )
    if not 0 <= position < len(elements):
        raise InvalidStageInputError(f"position {position} outside a ring of {len(elements)}")
    if elgamal.public_element(secret) != elements[position]:
        raise InvalidStageInputError(f"the secret does not match the element at {position}")
    full = elgamal.combine_public_keys(elements)
    is_aggregator = position == len(elements) - 1
    partial = full if is_aggregator else elgamal.combine_public_keys(elements[position + 1 :])
    return DuchyKeys(secret=secret, full_key=full, partial_key=partial)
