"""What the Herald needs from this duchy's internal API, and its gRPC implementation.

Failures surface as `StatusError` with the internal server's code.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias

import grpc

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_protocols_pb2,
    computation_token_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
    continuation_tokens_service_pb2,
    continuation_tokens_service_pb2_grpc,
)
from cmms.common.grpc import StatusError
from cmms.duchy.internal_client import call

pb = computations_service_pb2
Token = computation_token_pb2.ComputationToken
Details = computation_details_pb2.ComputationDetails
RequisitionEntry = computation_details_pb2.RequisitionEntry
Stage = computation_protocols_pb2.ComputationStage
CompletedReason: TypeAlias = computation_details_pb2.ComputationDetails.CompletedReason.ValueType


class LocalComputations(Protocol):
    async def create(self, request: pb.CreateComputationRequest) -> Token: ...

    async def get_token(self, global_computation_id: str) -> Token | None:
        """`None` when this duchy has no such computation."""
        ...

    async def update_details(
        self, token: Token, details: Details, requisitions: Sequence[RequisitionEntry]
    ) -> Token: ...

    async def advance(self, request: pb.AdvanceComputationStageRequest) -> Token: ...

    async def finish(self, token: Token, ending_stage: Stage, reason: CompletedReason) -> Token: ...

    async def delete(self, local_computation_id: int) -> None: ...


class ContinuationTokenStore(Protocol):
    async def get(self) -> str:
        """The stored token; empty when none is stored."""
        ...

    async def set(self, token: str) -> None:
        """FAILED_PRECONDITION when `token` is older than the stored one."""
        ...


class GrpcLocalComputations:
    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._stub = computations_service_pb2_grpc.ComputationsStub(channel)
        self._deadline = deadline_seconds

    async def create(self, request: pb.CreateComputationRequest) -> Token:
        reply: pb.CreateComputationResponse = await call(
            self._stub.CreateComputation(request, timeout=self._deadline)
        )
        return reply.token

    async def get_token(self, global_computation_id: str) -> Token | None:
        request = pb.GetComputationTokenRequest(global_computation_id=global_computation_id)
        try:
            reply: pb.GetComputationTokenResponse = await call(
                self._stub.GetComputationToken(request, timeout=self._deadline)
            )
        except StatusError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return reply.token

    async def update_details(
        self, token: Token, details: Details, requisitions: Sequence[RequisitionEntry]
    ) -> Token:
        request = pb.UpdateComputationDetailsRequest(
            token=token, details=details, requisitions=requisitions
        )
        reply: pb.UpdateComputationDetailsResponse = await call(
            self._stub.UpdateComputationDetails(request, timeout=self._deadline)
        )
        return reply.token

    async def advance(self, request: pb.AdvanceComputationStageRequest) -> Token:
        reply: pb.AdvanceComputationStageResponse = await call(
            self._stub.AdvanceComputationStage(request, timeout=self._deadline)
        )
        return reply.token

    async def finish(self, token: Token, ending_stage: Stage, reason: CompletedReason) -> Token:
        request = pb.FinishComputationRequest(
            token=token, ending_computation_stage=ending_stage, reason=reason
        )
        reply: pb.FinishComputationResponse = await call(
            self._stub.FinishComputation(request, timeout=self._deadline)
        )
        return reply.token

    async def delete(self, local_computation_id: int) -> None:
        await call(
            self._stub.DeleteComputation(
                pb.DeleteComputationRequest(local_computation_id=local_computation_id),
                timeout=self._deadline,
            )
        )


class GrpcContinuationTokenStore:
    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._stub = continuation_tokens_service_pb2_grpc.ContinuationTokensStub(channel)
        self._deadline = deadline_seconds

    async def get(self) -> str:
        reply: continuation_tokens_service_pb2.GetContinuationTokenResponse = await call(
            self._stub.GetContinuationToken(
                continuation_tokens_service_pb2.GetContinuationTokenRequest(),
                timeout=self._deadline,
                wait_for_ready=True,
            )
        )
        return reply.token

    async def set(self, token: str) -> None:
        await call(
            self._stub.SetContinuationToken(
                continuation_tokens_service_pb2.SetContinuationTokenRequest(token=token),
                timeout=self._deadline,
            )
        )
