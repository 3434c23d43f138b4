"""Framing of a `RequisitionFulfillment.FulfillRequisition` upload and the choice of duchy."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator

from cmms.api.public.v1 import requisition_fulfillment_pb2
from cmms.clients.edp.verification import (
    SPEC_INVALID,
    Protocol,
    RequisitionRefused,
    VerifiedRequisition,
)

BODY_CHUNK_SIZE = 32 * 1024
Request = requisition_fulfillment_pb2.FulfillRequisitionRequest


class NoDuchyTargetError(Exception):
    """None of the duchies that may take this requisition is among the configured targets."""


def request_stream(
    header: Request.Header, body: Iterable[bytes], chunk_size: int = BODY_CHUNK_SIZE
) -> Iterator[Request]:
    """The header, then the body re-cut into `chunk_size` pieces (only the last may be shorter)."""
    if chunk_size <= 0:
        raise ValueError(f"chunk size must be positive, got {chunk_size}")
    yield Request(header=header)
    pending = bytearray()
    for piece in body:
        pending += piece
        while len(pending) >= chunk_size:
            yield Request(body_chunk=Request.BodyChunk(data=bytes(pending[:chunk_size])))
            del pending[:chunk_size]
    if pending:
        yield Request(body_chunk=Request.BodyChunk(data=bytes(pending)))


def fulfilling_duchy(verified: VerifiedRequisition, reachable: Collection[str]) -> str:
    """The duchy this requisition's data goes to.

    HMSS: the non-aggregator without a key; TrusTee: its only duchy. LLv2 accepts any participant:
    the choice is a hash of the requisition name over the reachable ones, so retries of one
    requisition go to the same duchy while different requisitions spread out.
    """
    if verified.protocol is Protocol.HONEST_MAJORITY_SHARE_SHUFFLE:
        assert verified.hmss is not None
        candidates = [verified.hmss.fulfilling_duchy]
    elif verified.protocol is Protocol.TRUS_TEE or verified.protocol.is_liquid_legions:
        candidates = sorted(verified.duchies)
    else:
        raise RequisitionRefused(SPEC_INVALID, f"{verified.protocol.value} has no fulfilling duchy")
    usable = [duchy for duchy in candidates if duchy in reachable]
    if not usable:
        # Our configuration lacks a target: not the consumer's fault, so no refusal.
        raise NoDuchyTargetError(
            f"no configured duchy target among {', '.join(candidates) or 'none'} "
            f"for {verified.requisition.name}"
        )
    digest = hashlib.sha256(verified.requisition.name.encode()).digest()
    return usable[int.from_bytes(digest[:8], "big") % len(usable)]
