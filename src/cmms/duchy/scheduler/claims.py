"""Claiming work for a mill job, and the claim the job then carries on its command line.

The scheduler claims first (a work lock owned by the job's name, in the duchy database) and only
then launches the job, so a job never starts without work and two jobs never hold one computation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import grpc
from google.protobuf.duration_pb2 import Duration

from cmms.api.internal.duchy.v1 import (
    computation_protocols_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
)
from cmms.duchy.stage_messages import computation_stage
from cmms.protocols.stages import ProtocolType


@dataclass(frozen=True)
class ClaimedWork:
    """What a successful ClaimWork returns that a mill job needs to find its computation."""

    global_computation_id: str
    version: int


@dataclass(frozen=True)
class MillClaim:
    """A claimed computation handed to one mill job (the job is named after the lock owner)."""

    mill_id: str
    computation_type: ProtocolType
    global_computation_id: str
    version: int

    def mill_args(self) -> list[str]:
        """The `cmms duchy mill` flags that make the job work on exactly this claim."""
        return [
            f"--mill-id={self.mill_id}",
            f"--claimed-computation-type={self.computation_type.name}",
            f"--claimed-computation-id={self.global_computation_id}",
            f"--claimed-computation-version={self.version}",
        ]


class WorkClaimer(Protocol):
    """Claims the next claimable computation of a protocol, or returns `None`."""

    async def claim_work(
        self,
        computation_type: ProtocolType,
        owner: str,
        lock_duration: timedelta,
        prioritized_stages: Sequence[int],
    ) -> ClaimedWork | None: ...


class GrpcWorkClaimer:
    """`WorkClaimer` over the internal `Computations.ClaimWork` RPC."""

    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._stub = computations_service_pb2_grpc.ComputationsStub(channel)
        self._deadline = deadline_seconds

    async def claim_work(
        self,
        computation_type: ProtocolType,
        owner: str,
        lock_duration: timedelta,
        prioritized_stages: Sequence[int],
    ) -> ClaimedWork | None:
        duration = Duration()
        duration.FromTimedelta(lock_duration)
        request = computations_service_pb2.ClaimWorkRequest(
            computation_type=computation_protocols_pb2.ComputationType.Value(computation_type.name),
            owner=owner,
            lock_duration=duration,
            prioritized_stages=[computation_stage(computation_type, s) for s in prioritized_stages],
        )
        reply: computations_service_pb2.ClaimWorkResponse = await self._stub.ClaimWork(
            request, timeout=self._deadline
        )
        if not reply.HasField("token"):
            return None
        return ClaimedWork(reply.token.global_computation_id, reply.token.version)


# The longest wait the internal API accepts in one AwaitWork call.
AWAIT_WORK_LIMIT = timedelta(minutes=5)


class WorkWatcher(Protocol):
    """Waits until work may have become claimable, or `timeout` has passed.

    Returns the marker of the change seen, to pass as `since` next time ("" when unknown).
    """

    async def await_work(self, since: str, timeout: timedelta) -> str: ...


class GrpcWorkWatcher:
    """`WorkWatcher` over `Computations.AwaitWork`; a plain sleep where the server lacks it."""

    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._stub = computations_service_pb2_grpc.ComputationsStub(channel)
        self._deadline = deadline_seconds
        self._supported = True

    async def await_work(self, since: str, timeout: timedelta) -> str:
        if not self._supported:
            await asyncio.sleep(timeout.total_seconds())
            return ""
        duration = Duration()
        duration.FromTimedelta(min(timeout, AWAIT_WORK_LIMIT))
        try:
            reply: computations_service_pb2.AwaitWorkResponse = await self._stub.AwaitWork(
                computations_service_pb2.AwaitWorkRequest(since=since, timeout=duration),
                timeout=timeout.total_seconds() + self._deadline,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.UNIMPLEMENTED:
                raise
            # An older internal API: poll at the same pace instead.
            self._supported = False
            await asyncio.sleep(timeout.total_seconds())
            return ""
        return reply.change
