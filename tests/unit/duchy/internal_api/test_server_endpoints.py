"""Every duchy server comes with plaintext gRPC health, /healthz and /metrics, and drains."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cmms.common.identity import Principal
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.internal_api.server import COMPUTATIONS
from cmms.testing.duchy_fixtures import ChannelOpener


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    status = int(response.split(b" ", 2)[1])
    return status, response.split(b"\r\n\r\n", 1)[1]


async def test_health_metrics_and_drain(
    internal_api: DuchyDeployable, channel_to: ChannelOpener
) -> None:
    ports = internal_api.ports
    assert ports.health is not None and ports.http is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ports.health}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=COMPUTATIONS))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    # One call so the RPC metrics have a sample for this server.
    secure = health_pb2_grpc.HealthStub(channel_to(ports.grpc, Principal.duchy("aggregator")))
    await secure.Check(health_pb2.HealthCheckRequest())
    assert await http_get(ports.http, "/healthz") == (200, b"ok\n")
    status, metrics = await http_get(ports.http, "/metrics")
    assert status == 200 and b"aggregator-internal-api" in metrics

    await internal_api.stop()
    assert not internal_api.server.serving
    try:
        await asyncio.open_connection("127.0.0.1", ports.http)
    except OSError:
        pass
    else:
        raise AssertionError("the HTTP port still accepts connections after the drain")
