"""Stage statistics: ComputationStats rows (per stage attempt) and Prometheus metrics.

Statistics never decide anything, so writing them is best effort (duchy_internals §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc

from cmms.api.internal.duchy.v1 import (
    computation_stats_service_pb2,
    computation_stats_service_pb2_grpc,
)
from cmms.common.grpc import StatusError
from cmms.common.logging import get_logger
from cmms.duchy.internal_client import call
from cmms.duchy.mill import metrics
from cmms.duchy.mill.tokens import Token, protocol_of, stage_of
from cmms.duchy.stage_messages import computation_stage
from cmms.protocols.stages import ProtocolType, stage_graph

StatRequest = computation_stats_service_pb2.CreateComputationStatRequest

# Metric names the reference mills emit, kept so that dashboards carry over.
STAGE_WALL_CLOCK_MS = "stage_wall_clock_duration_ms"
CRYPTO_WALL_CLOCK_MS = "crypto_wall_clock_duration_ms"
CRYPTO_CPU_MS = "crypto_cpu_duration_ms"
RPC_WALL_CLOCK_MS = "data_transmission_rpc_wall_clock_duration_ms"
RPC_BYTES = "bytes_of_data_in_rpc"

_log = get_logger(__name__)


class StatsSink(Protocol):
    async def create_stat(self, request: StatRequest) -> None: ...


class GrpcStatsSink:
    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._stub = computation_stats_service_pb2_grpc.ComputationStatsStub(channel)
        self._deadline = deadline_seconds

    async def create_stat(self, request: StatRequest) -> None:
        await call(self._stub.CreateComputationStat(request, timeout=self._deadline))


@dataclass(frozen=True)
class AttemptKey:
    """The stage attempt statistics belong to (the token moves on when the stage advances)."""

    local_computation_id: int
    protocol: ProtocolType
    stage: int
    attempt: int

    @classmethod
    def of(cls, token: Token) -> AttemptKey:
        return cls(token.local_computation_id, protocol_of(token), stage_of(token), token.attempt)

    @property
    def labels(self) -> tuple[str, str]:
        return self.protocol.name, stage_graph(self.protocol).stage(self.stage).name


class StatsRecorder:
    def __init__(self, sink: StatsSink) -> None:
        self._sink = sink

    async def record(self, key: AttemptKey, name: str, value: int) -> None:
        """Attach `name = value` to the stage attempt; failures are only logged."""
        request = StatRequest(
            local_computation_id=key.local_computation_id,
            computation_stage=computation_stage(key.protocol, key.stage),
            attempt=key.attempt,
            metric_name=name,
            metric_value=value,
        )
        try:
            await self._sink.create_stat(request)
        except StatusError as error:
            _log.info("stat not recorded", metric=name, error=str(error))

    async def stage_finished(self, key: AttemptKey, seconds: float, outcome: str) -> None:
        labels = key.labels
        metrics.STAGE_SECONDS.labels(*labels, outcome).observe(seconds)
        metrics.ATTEMPTS.labels(*labels, outcome).inc()
        await self.record(key, STAGE_WALL_CLOCK_MS, round(seconds * 1000))

    async def crypto(self, key: AttemptKey, wall_seconds: float, cpu_seconds: float) -> None:
        labels = key.labels
        metrics.CRYPTO_SECONDS.labels(*labels).observe(wall_seconds)
        metrics.CRYPTO_CPU_SECONDS.labels(*labels).observe(cpu_seconds)
        await self.record(key, CRYPTO_WALL_CLOCK_MS, round(wall_seconds * 1000))
        await self.record(key, CRYPTO_CPU_MS, round(cpu_seconds * 1000))

    async def sent(self, key: AttemptKey, byte_count: int, seconds: float) -> None:
        labels = key.labels
        metrics.PEER_BYTES.labels(*labels).inc(byte_count)
        metrics.PEER_SECONDS.labels(*labels).observe(seconds)
        await self.record(key, RPC_WALL_CLOCK_MS, round(seconds * 1000))
        await self.record(key, RPC_BYTES, byte_count)
