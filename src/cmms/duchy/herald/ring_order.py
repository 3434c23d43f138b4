"""The Liquid Legions ring order every duchy must agree on (duchy_internals §9.2, pitfall 19).

Non-aggregators are sorted by the SHA-1 of (their serialized ElGamal key, decoded as UTF-8 with
invalid sequences replaced, then the global computation id), read as a *signed* big-endian
integer; the aggregator comes last. The lossy decode and the signed reading reproduce what the
reference duchies compute, so a mixed deployment still forms one ring.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from cmms.duchy.herald.errors import HeraldError


@dataclass(frozen=True)
class RingMember:
    duchy_id: str
    serialized_public_key: bytes


Member = TypeVar("Member", bound=RingMember)


def ring_sort_key(serialized_public_key: bytes, global_computation_id: str) -> int:
    text = serialized_public_key.decode("utf-8", errors="replace") + global_computation_id
    digest = hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).digest()
    return int.from_bytes(digest, "big", signed=True)


def ring_order(
    members: Sequence[Member], aggregator_id: str, global_computation_id: str
) -> list[Member]:
    """`members` in ring order: sorted non-aggregators, then the aggregator."""
    aggregators = [m for m in members if m.duchy_id == aggregator_id]
    if len(aggregators) != 1:
        raise HeraldError(
            f"the aggregator {aggregator_id!r} must take part exactly once, "
            f"participants are {[m.duchy_id for m in members]}"
        )
    others = sorted(
        (m for m in members if m.duchy_id != aggregator_id),
        # The duchy id only breaks (astronomically unlikely) hash ties deterministically.
        key=lambda m: (ring_sort_key(m.serialized_public_key, global_computation_id), m.duchy_id),
    )
    return [*others, aggregators[0]]
