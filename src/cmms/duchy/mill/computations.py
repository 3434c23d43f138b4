"""The internal `Computations` API as the mill uses it.

`ComputationsClient` is what the mill needs; `GrpcComputationsClient` implements it over the
internal API server. Failures surface as `StatusError`s carrying the server's own code, so the
runner can tell a retryable ABORTED from a permanent INVALID_ARGUMENT.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

import grpc
from google.protobuf.duration_pb2 import Duration

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
)
from cmms.duchy.internal_client import call
from cmms.duchy.mill.tokens import Token, protocol_of
from cmms.duchy.stage_messages import computation_stage
from cmms.protocols.stages import ProtocolType

pb = computations_service_pb2
AdvanceRequest = pb.AdvanceComputationStageRequest
CompletedReason = computation_details_pb2.ComputationDetails.CompletedReason
RequisitionEntry = computation_details_pb2.RequisitionEntry


class ComputationsClient(Protocol):
    async def claim_work(
        self,
        computation_type: ProtocolType,
        owner: str,
        lock_duration: timedelta,
        prioritized_stages: Sequence[int],
    ) -> Token | None:
        """Lock the next claimable computation of the type, or None if there is none."""
        ...

    async def get_token(self, global_computation_id: str) -> Token: ...

    async def update_details(
        self,
        token: Token,
        details: computation_details_pb2.ComputationDetails,
        requisitions: Sequence[RequisitionEntry] = (),
    ) -> Token: ...

    async def record_output(self, token: Token, blob_id: int, path: str) -> Token: ...

    async def advance(self, request: AdvanceRequest) -> Token: ...

    async def finish(self, token: Token, ending_stage: int, reason: int) -> Token: ...

    async def enqueue(self, token: Token, delay_seconds: int, expected_owner: str) -> None: ...


class GrpcComputationsClient:
    """`ComputationsClient` over the internal API server."""

    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._stub = computations_service_pb2_grpc.ComputationsStub(channel)
        self._deadline = deadline_seconds

    async def claim_work(
        self,
        computation_type: ProtocolType,
        owner: str,
        lock_duration: timedelta,
        prioritized_stages: Sequence[int],
    ) -> Token | None:
        duration = Duration()
        duration.FromTimedelta(lock_duration)
        request = pb.ClaimWorkRequest(
            computation_type=int(computation_type),  # type: ignore[arg-type]
            owner=owner,
            lock_duration=duration,
            prioritized_stages=[computation_stage(computation_type, s) for s in prioritized_stages],
        )
        reply: pb.ClaimWorkResponse = await call(
            self._stub.ClaimWork(request, timeout=self._deadline)
        )
        return reply.token if reply.HasField("token") else None

    async def get_token(self, global_computation_id: str) -> Token:
        request = pb.GetComputationTokenRequest(global_computation_id=global_computation_id)
        reply: pb.GetComputationTokenResponse = await call(
            self._stub.GetComputationToken(request, timeout=self._deadline)
        )
        return reply.token

    async def update_details(
        self,
        token: Token,
        details: computation_details_pb2.ComputationDetails,
        requisitions: Sequence[RequisitionEntry] = (),
    ) -> Token:
        request = pb.UpdateComputationDetailsRequest(
            token=token, details=details, requisitions=requisitions
        )
        reply: pb.UpdateComputationDetailsResponse = await call(
            self._stub.UpdateComputationDetails(request, timeout=self._deadline)
        )
        return reply.token

    async def record_output(self, token: Token, blob_id: int, path: str) -> Token:
        request = pb.RecordOutputBlobPathRequest(
            token=token, output_blob_id=blob_id, blob_path=path
        )
        reply: pb.RecordOutputBlobPathResponse = await call(
            self._stub.RecordOutputBlobPath(request, timeout=self._deadline)
        )
        return reply.token

    async def advance(self, request: AdvanceRequest) -> Token:
        reply: pb.AdvanceComputationStageResponse = await call(
            self._stub.AdvanceComputationStage(request, timeout=self._deadline)
        )
        return reply.token

    async def finish(self, token: Token, ending_stage: int, reason: int) -> Token:
        request = pb.FinishComputationRequest(
            token=token,
            ending_computation_stage=computation_stage(protocol_of(token), ending_stage),
            reason=reason,  # type: ignore[arg-type]
        )
        reply: pb.FinishComputationResponse = await call(
            self._stub.FinishComputation(request, timeout=self._deadline)
        )
        return reply.token

    async def enqueue(self, token: Token, delay_seconds: int, expected_owner: str) -> None:
        request = pb.EnqueueComputationRequest(
            token=token, delay_seconds=delay_seconds, expected_owner=expected_owner
        )
        await call(self._stub.EnqueueComputation(request, timeout=self._deadline))
