"""`GrpcWorkClaimer` against an in-process `Computations` servicer on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc
import pytest

from cmms.api.internal.duchy.v1 import (
    computation_token_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
)
from cmms.duchy.scheduler import ClaimedWork, GrpcWorkClaimer, GrpcWorkWatcher
from cmms.protocols.hmss.stages import Stage as HmssStage
from cmms.protocols.stages import ProtocolType


class OneClaimable(computations_service_pb2_grpc.ComputationsServicer):
    """Hands out one HMSS computation, then nothing."""

    def __init__(self) -> None:
        self.requests: list[computations_service_pb2.ClaimWorkRequest] = []

    async def ClaimWork(
        self, request: computations_service_pb2.ClaimWorkRequest, context: Any
    ) -> computations_service_pb2.ClaimWorkResponse:
        self.requests.append(request)
        if len(self.requests) > 1:
            return computations_service_pb2.ClaimWorkResponse()
        token = computation_token_pb2.ComputationToken(
            local_computation_id=77, global_computation_id="gid-hmss", version=4
        )
        return computations_service_pb2.ClaimWorkResponse(token=token)


@pytest.fixture
async def claimer() -> AsyncIterator[tuple[OneClaimable, GrpcWorkClaimer]]:
    servicer = OneClaimable()
    server = grpc.aio.server()
    computations_service_pb2_grpc.add_ComputationsServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield servicer, GrpcWorkClaimer(channel, deadline_seconds=30)
    finally:
        await channel.close()
        await server.stop(None)


async def test_a_claim_and_then_nothing(claimer: tuple[OneClaimable, GrpcWorkClaimer]) -> None:
    servicer, client = claimer
    args = (
        ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE,
        "worker1-hmss-mill-job-bcdfg",
        timedelta(minutes=5, seconds=30),
        [HmssStage.INITIALIZED.value],
    )

    assert await client.claim_work(*args) == ClaimedWork("gid-hmss", 4)
    assert await client.claim_work(*args) is None

    request = servicer.requests[0]
    assert request.computation_type == ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE.value
    assert request.owner == "worker1-hmss-mill-job-bcdfg"
    assert request.lock_duration.ToTimedelta() == timedelta(minutes=5, seconds=30)
    (stage,) = request.prioritized_stages
    assert stage.WhichOneof("stage") == "honest_majority_share_shuffle"
    assert stage.honest_majority_share_shuffle == HmssStage.INITIALIZED.value


class Watched(OneClaimable):
    """Also answers AwaitWork, echoing what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[computations_service_pb2.AwaitWorkRequest] = []

    async def AwaitWork(
        self, request: computations_service_pb2.AwaitWorkRequest, context: Any
    ) -> computations_service_pb2.AwaitWorkResponse:
        self.waits.append(request)
        return computations_service_pb2.AwaitWorkResponse(change="s:2", changed=True)


async def serve(servicer: computations_service_pb2_grpc.ComputationsServicer) -> tuple[Any, Any]:
    server = grpc.aio.server()
    computations_service_pb2_grpc.add_ComputationsServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")


async def test_the_watcher_passes_the_marker_and_caps_the_timeout() -> None:
    servicer = Watched()
    server, channel = await serve(servicer)
    try:
        watcher = GrpcWorkWatcher(channel, deadline_seconds=30)
        assert await watcher.await_work("s:1", timedelta(hours=1)) == "s:2"
        assert servicer.waits[0].since == "s:1"
        # The server takes at most five minutes per call.
        assert servicer.waits[0].timeout.ToTimedelta() == timedelta(minutes=5)
    finally:
        await channel.close()
        await server.stop(None)


async def test_the_watcher_polls_when_the_server_lacks_await_work() -> None:
    # OneClaimable does not implement AwaitWork: the watcher sleeps out the timeout instead.
    server, channel = await serve(OneClaimable())
    try:
        watcher = GrpcWorkWatcher(channel, deadline_seconds=30)
        assert await watcher.await_work("", timedelta(milliseconds=20)) == ""
        assert await watcher.await_work("x:1", timedelta(milliseconds=20)) == ""
    finally:
        await channel.close()
        await server.stop(None)
