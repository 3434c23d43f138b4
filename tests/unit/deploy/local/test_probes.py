"""Readiness probes against real health endpoints."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from cmms.common.grpc.http import HealthAndMetricsServer
from cmms.deploy.local.ports import free_ports
from cmms.deploy.local.probes import GrpcHealthProbe, HttpHealthProbe


async def test_grpc_probe_follows_the_servers_health() -> None:
    (port,) = free_ports(1)
    probe = GrpcHealthProbe("127.0.0.1", port)
    assert not await probe.check()  # nothing listens yet
    server = grpc.aio.server()
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    try:
        await health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert not await probe.check()
        await health.set("", health_pb2.HealthCheckResponse.SERVING)
        assert await probe.check()
    finally:
        await server.stop(None)
    assert "127.0.0.1" in probe.description


async def test_http_probe_wants_a_200() -> None:
    (port,) = free_ports(1)
    probe = HttpHealthProbe("127.0.0.1", port)
    assert not await probe.check()
    healthy = False
    server = HealthAndMetricsServer("127.0.0.1", port, is_healthy=lambda: healthy)
    await server.start()
    try:
        assert not await probe.check()  # 503
        healthy = True
        assert await probe.check()
        assert not await HttpHealthProbe("127.0.0.1", port, "/nowhere").check()
    finally:
        await server.stop()


def test_free_ports_are_distinct() -> None:
    ports = free_ports(50)
    assert len(set(ports)) == 50
