"""`ComputationStats`: one metric of a stage attempt (duchy_internals §3)."""

from __future__ import annotations

from typing import Any

from cmms.api.internal.duchy.v1 import (
    computation_stats_service_pb2,
    computation_stats_service_pb2_grpc,
)
from cmms.duchy.db import ComputationStatsRepositoryInterface
from cmms.duchy.internal_api.convert import stage_from_proto
from cmms.duchy.internal_api.errors import translating_errors

pb = computation_stats_service_pb2


class ComputationStatsServicer(computation_stats_service_pb2_grpc.ComputationStatsServicer):
    def __init__(self, repository: ComputationStatsRepositoryInterface) -> None:
        self._repository = repository

    @translating_errors
    async def CreateComputationStat(
        self, request: pb.CreateComputationStatRequest, context: Any
    ) -> pb.CreateComputationStatResponse:
        _, stage = stage_from_proto(request.computation_stage)
        await self._repository.create_computation_stat(
            request.local_computation_id,
            stage,
            request.attempt,
            request.metric_name,
            request.metric_value,
        )
        return pb.CreateComputationStatResponse()
