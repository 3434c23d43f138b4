"""The AsyncComputationControl API as the computation-control server calls it."""

from __future__ import annotations

import grpc

from cmms.api.internal.duchy.v1 import (
    async_computation_control_service_pb2,
    async_computation_control_service_pb2_grpc,
    computation_token_pb2,
)
from cmms.duchy.internal_api.convert import stage_to_proto
from cmms.duchy.internal_client import call

pb = async_computation_control_service_pb2


class AsyncControlClient:
    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._stub = async_computation_control_service_pb2_grpc.AsyncComputationControlStub(channel)
        self._deadline = deadline_seconds

    async def output_blob_metadata(
        self, global_computation_id: str, data_origin: str, protocol: int, stage: int
    ) -> computation_token_pb2.ComputationStageBlobMetadata:
        request = pb.GetOutputBlobMetadataRequest(
            global_computation_id=global_computation_id,
            data_origin=data_origin,
            computation_stage=stage_to_proto(protocol, stage),
        )
        reply: computation_token_pb2.ComputationStageBlobMetadata = await call(
            self._stub.GetOutputBlobMetadata(request, timeout=self._deadline)
        )
        return reply

    async def advance(
        self, global_computation_id: str, protocol: int, stage: int, blob_id: int, path: str
    ) -> None:
        request = pb.AdvanceComputationRequest(
            global_computation_id=global_computation_id,
            computation_stage=stage_to_proto(protocol, stage),
            blob_id=blob_id,
            blob_path=path,
        )
        await call(self._stub.AdvanceComputation(request, timeout=self._deadline))
