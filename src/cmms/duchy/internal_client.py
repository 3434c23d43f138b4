"""The internal `Computations` API as the duchy's servers call it: deadlines, and errors as
`StatusError`s carrying the internal server's own status code (so NOT_FOUND stays NOT_FOUND and a
retryable ABORTED stays retryable when it is passed on)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import grpc

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_token_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
)
from cmms.common.grpc import StatusError

pb = computations_service_pb2
Token = computation_token_pb2.ComputationToken
Reply = TypeVar("Reply")

# Reads that may be retried by the channel on UNAVAILABLE.
IDEMPOTENT_METHODS = ("/cmms.api.internal.duchy.v1.Computations/GetComputationToken",)


async def call(reply: Awaitable[Reply]) -> Reply:
    """Await an RPC, turning its failure into a StatusError with the same code."""
    try:
        return await reply
    except grpc.aio.AioRpcError as error:
        raise StatusError(error.code(), error.details() or error.code().name) from error


class InternalComputationsClient:
    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._stub = computations_service_pb2_grpc.ComputationsStub(channel)
        self._deadline = deadline_seconds

    async def get_token(self, global_computation_id: str) -> Token:
        request = pb.GetComputationTokenRequest(global_computation_id=global_computation_id)
        reply: pb.GetComputationTokenResponse = await call(
            self._stub.GetComputationToken(request, timeout=self._deadline)
        )
        return reply.token

    async def get_token_by_requisition(
        self, key: computation_details_pb2.ExternalRequisitionKey
    ) -> Token:
        request = pb.GetComputationTokenRequest(requisition_key=key)
        reply: pb.GetComputationTokenResponse = await call(
            self._stub.GetComputationToken(request, timeout=self._deadline)
        )
        return reply.token

    async def record_output_blob_path(self, token: Token, blob_id: int, path: str) -> Token:
        request = pb.RecordOutputBlobPathRequest(
            token=token, output_blob_id=blob_id, blob_path=path
        )
        reply: pb.RecordOutputBlobPathResponse = await call(
            self._stub.RecordOutputBlobPath(request, timeout=self._deadline)
        )
        return reply.token

    async def advance_stage(self, request: pb.AdvanceComputationStageRequest) -> Token:
        reply: pb.AdvanceComputationStageResponse = await call(
            self._stub.AdvanceComputationStage(request, timeout=self._deadline)
        )
        return reply.token

    async def record_requisition_fulfillment(
        self, request: pb.RecordRequisitionFulfillmentRequest
    ) -> Token:
        reply: pb.RecordRequisitionFulfillmentResponse = await call(
            self._stub.RecordRequisitionFulfillment(request, timeout=self._deadline)
        )
        return reply.token
