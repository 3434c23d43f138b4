"""Sending a stage output to another duchy's ComputationControl (duchy_internals §5, §8.5).

Before sending, the sender asks the peer for its stage: a peer already past the WAIT stage that
takes this input has it (a retried stage must not deliver twice), a peer not there yet cannot
take it (retry later), and only a peer in that very stage gets the bytes, as a header followed by
body chunks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import grpc

from cmms.api.system.v1 import computation_control_pb2, computation_control_pb2_grpc
from cmms.common.grpc import StatusError
from cmms.duchy.internal_client import call
from cmms.duchy.mill.errors import TransientError
from cmms.protocols.stages import ProtocolType

Request = computation_control_pb2.AdvanceComputationRequest
Header = Request.Header

MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 1 * MIB

# Protocol -> the member naming it in the AdvanceComputation header and in ComputationStage.
SYSTEM_FIELDS: dict[ProtocolType, str] = {
    ProtocolType.LIQUID_LEGIONS_V2: "liquid_legions_v2",
    ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2: "reach_only_liquid_legions_v2",
    ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE: "honest_majority_share_shuffle",
}


class PeerControl(Protocol):
    """The two ComputationControl calls, addressed by peer duchy id."""

    async def get_stage(self, peer: str, global_id: str, protocol: ProtocolType) -> int | None:
        """The peer's stage number of `protocol`, or None if it reports another or none."""
        ...

    async def advance(self, peer: str, header: Header, chunks: AsyncIterator[bytes]) -> None: ...


class GrpcPeerControl:
    """`PeerControl` over mutual-TLS channels to each peer's ComputationControl server."""

    def __init__(
        self, channels: Mapping[str, grpc.aio.Channel], deadline_seconds: float = 300.0
    ) -> None:
        self._stubs = {
            peer: computation_control_pb2_grpc.ComputationControlStub(channel)
            for peer, channel in channels.items()
        }
        self._deadline = deadline_seconds

    def _stub(self, peer: str) -> computation_control_pb2_grpc.ComputationControlStub:
        stub = self._stubs.get(peer)
        if stub is None:
            # A deployment error, not a data error: retrying lets an operator add the target.
            raise TransientError(f"no ComputationControl target is configured for duchy {peer!r}")
        return stub

    async def get_stage(self, peer: str, global_id: str, protocol: ProtocolType) -> int | None:
        request = computation_control_pb2.GetComputationStageRequest(
            name=f"computations/{global_id}/participants/{peer}/computationStage"
        )
        reply: computation_control_pb2.ComputationStage = await call(
            self._stub(peer).GetComputationStage(request, timeout=self._deadline)
        )
        member = reply.WhichOneof("stage")
        # Each protocol's stages map to its own enum (the reference mixes RO-LLv2 and LLv2 here).
        if member is None or member != SYSTEM_FIELDS[protocol]:
            return None
        stage: int = getattr(reply, member).stage
        return stage or None

    async def advance(self, peer: str, header: Header, chunks: AsyncIterator[bytes]) -> None:
        stub = self._stub(peer)

        async def requests() -> AsyncIterator[Request]:
            yield Request(header=header)
            async for chunk in chunks:
                yield Request(body_chunk=Request.BodyChunk(partial_data=chunk))

        await call(stub.AdvanceComputation(requests(), timeout=self._deadline))


class Delivery(Enum):
    SENT = "sent"
    ALREADY_RECEIVED = "already received"


@dataclass(frozen=True)
class SentInput:
    delivery: Delivery
    bytes_sent: int
    seconds: float


def input_header(protocol: ProtocolType, global_id: str, description: int) -> Header:
    """The header announcing input `description` of `protocol` for computation `global_id`."""
    header = Header(name=f"computations/{global_id}")
    getattr(header, SYSTEM_FIELDS[protocol]).description = description
    return header


class PeerSender:
    def __init__(self, control: PeerControl, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk size must be positive, got {chunk_size}")
        self._control = control
        self._chunk_size = chunk_size

    async def send(
        self,
        protocol: ProtocolType,
        peer: str,
        global_id: str,
        description: int,
        expected_stage: int,
        payload: bytes | bytearray,
    ) -> SentInput:
        """Deliver `payload` to `peer` if it waits for it in `expected_stage`.

        Stage numbers follow each protocol's path order, so a larger number is further along.
        """
        try:
            peer_stage = await self._control.get_stage(peer, global_id, protocol)
        except StatusError as error:
            if error.code != grpc.StatusCode.NOT_FOUND:
                raise
            # The peer's herald has not created the computation yet: it will.
            raise TransientError(
                f"duchy {peer} does not know computation {global_id} yet"
            ) from error
        if peer_stage is not None and peer_stage > expected_stage:
            return SentInput(Delivery.ALREADY_RECEIVED, 0, 0.0)
        if peer_stage is not None and peer_stage < expected_stage:
            raise TransientError(
                f"duchy {peer} is at stage {peer_stage}, not yet at {expected_stage}; sending later"
            )
        started = time.monotonic()
        await self._control.advance(
            peer, input_header(protocol, global_id, description), self._chunks(payload)
        )
        return SentInput(Delivery.SENT, len(payload), time.monotonic() - started)

    async def _chunks(self, payload: bytes | bytearray) -> AsyncIterator[bytes]:
        view = memoryview(payload)
        for start in range(0, len(view), self._chunk_size):
            yield bytes(view[start : start + self._chunk_size])
