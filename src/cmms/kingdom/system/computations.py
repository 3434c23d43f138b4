"""`Computations`: GetComputation, StreamActiveComputations, SetComputationResult (§2.2)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from cmms.api.system.v1 import computation_pb2, computations_pb2, computations_pb2_grpc
from cmms.common.identity import PrincipalProvider, current_principal
from cmms.kingdom import names
from cmms.kingdom.db.computations import ComputationResult, StreamPosition
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.errors import invalid_argument, permission_denied
from cmms.kingdom.system.caller import calling_duchy
from cmms.kingdom.system.stream_token import decode_token, encode_token
from cmms.kingdom.system.views import computation_message


@dataclass(frozen=True)
class StreamSettings:
    """Each call polls every `poll_interval` seconds (or sooner, on a commit) for up to
    `batch_size` rows, and ends normally after `max_lifetime` seconds."""

    poll_interval: float = 1.0
    batch_size: int = 50
    max_lifetime: float = 600.0


class ComputationsServicer(computations_pb2_grpc.ComputationsServicer):
    def __init__(
        self,
        repositories: KingdomRepositories,
        *,
        principal_provider: PrincipalProvider = current_principal,
        stream: StreamSettings = StreamSettings(),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repositories = repositories
        self._principal = principal_provider
        self._stream = stream
        self._monotonic = monotonic

    async def GetComputation(
        self, request: computations_pb2.GetComputationRequest, context: Any
    ) -> computation_pb2.Computation:
        duchy_id = calling_duchy(self._principal)
        computation_id = names.parse_computation(request.name)
        if computation_id is None:
            raise invalid_argument(f"bad computation name {request.name!r}")
        snapshot = await self._repositories.computations.get(computation_id)
        if snapshot.participant(duchy_id) is None:
            raise permission_denied(f"duchy {duchy_id} does not take part in {request.name}")
        return computation_message(snapshot)

    async def StreamActiveComputations(
        self, request: computations_pb2.StreamActiveComputationsRequest, context: Any
    ) -> AsyncIterator[computations_pb2.StreamActiveComputationsResponse]:
        duchy_id = calling_duchy(self._principal)
        try:
            position: StreamPosition | None = decode_token(request.continuation_token)
        except ValueError as exc:
            raise invalid_argument(str(exc)) from exc
        deadline = self._monotonic() + self._stream.max_lifetime
        changes = self._repositories.changes
        while True:
            # Read the feed version before polling, so a commit racing the poll wakes us.
            seen = changes.version
            batch = await self._repositories.computations.active_after(
                duchy_id, position, self._stream.batch_size
            )
            for snapshot in batch:
                measurement = snapshot.measurement
                assert measurement.computation_id is not None
                position = StreamPosition(measurement.update_time_us, measurement.computation_id)
                yield computations_pb2.StreamActiveComputationsResponse(
                    computation=computation_message(snapshot),
                    continuation_token=encode_token(position),
                )
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                return
            if len(batch) < self._stream.batch_size:
                await changes.wait_for_change(seen, min(self._stream.poll_interval, remaining))

    async def SetComputationResult(
        self, request: computations_pb2.SetComputationResultRequest, context: Any
    ) -> computation_pb2.Computation:
        duchy_id = calling_duchy(self._principal)
        computation_id = names.parse_computation(request.name)
        if computation_id is None:
            raise invalid_argument(f"bad computation name {request.name!r}")
        if not request.public_api_version:
            raise invalid_argument("public_api_version is required")
        certificate = names.parse_certificate(request.aggregator_certificate)
        if certificate is None or certificate.owner.kind is not names.OwnerKind.DUCHY:
            raise invalid_argument("aggregator_certificate must be a duchy certificate name")
        if certificate.owner.id != duchy_id:
            raise permission_denied("aggregator_certificate belongs to another duchy")
        snapshot = await self._repositories.computations.set_result(
            duchy_id,
            computation_id,
            ComputationResult(certificate, request.encrypted_result, request.public_api_version),
        )
        return computation_message(snapshot)
