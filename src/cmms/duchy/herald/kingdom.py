"""What the Herald needs from the Kingdom's system API, and its gRPC implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import grpc

from cmms.api.system.v1 import (
    computation_participants_pb2,
    computation_participants_pb2_grpc,
    computation_pb2,
    computations_pb2,
    computations_pb2_grpc,
)
from cmms.common.grpc import StatusError
from cmms.duchy.internal_client import call

Computation = computation_pb2.Computation
Failure = computation_pb2.ComputationParticipant.Failure


@dataclass(frozen=True)
class StreamedComputation:
    computation: Computation
    # Resumes the stream strictly after this computation.
    continuation_token: str


class KingdomComputations(Protocol):
    def stream_active_computations(
        self, continuation_token: str
    ) -> AsyncIterator[StreamedComputation]:
        """The caller's computations after the token; ends when the Kingdom ends the call.

        Failures surface as `StatusError`."""
        ...

    async def fail_participant(self, participant_name: str, failure: Failure) -> None:
        """FailComputationParticipant; raises `StatusError`."""
        ...


class GrpcKingdomComputations:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        deadline_seconds: float = 30.0,
        stream_deadline_seconds: float = 660.0,
    ) -> None:
        self._computations = computations_pb2_grpc.ComputationsStub(channel)
        self._participants = computation_participants_pb2_grpc.ComputationParticipantsStub(channel)
        self._deadline = deadline_seconds
        # Longer than the Kingdom's own ~10 minute stream lifetime, so it normally ends first.
        self._stream_deadline = stream_deadline_seconds

    async def stream_active_computations(
        self, continuation_token: str
    ) -> AsyncIterator[StreamedComputation]:
        stream = self._computations.StreamActiveComputations(
            computations_pb2.StreamActiveComputationsRequest(continuation_token=continuation_token),
            timeout=self._stream_deadline,
        )
        try:
            async for response in stream:
                yield StreamedComputation(response.computation, response.continuation_token)
        except grpc.aio.AioRpcError as error:
            raise StatusError(error.code(), error.details() or error.code().name) from error
        finally:
            stream.cancel()

    async def fail_participant(self, participant_name: str, failure: Failure) -> None:
        await call(
            self._participants.FailComputationParticipant(
                computation_participants_pb2.FailComputationParticipantRequest(
                    name=participant_name, failure=failure
                ),
                timeout=self._deadline,
            )
        )
