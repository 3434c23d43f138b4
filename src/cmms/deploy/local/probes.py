"""Readiness probes for supervised children: gRPC health (plaintext port) and HTTP `/healthz`."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

_SERVING = health_pb2.HealthCheckResponse.SERVING
_PROBE_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class GrpcHealthProbe:
    """Ready when `grpc.health.v1.Health/Check` for the whole server ("") answers SERVING."""

    host: str
    port: int

    @property
    def description(self) -> str:
        return f"gRPC health on {self.host}:{self.port}"

    async def check(self) -> bool:
        async with grpc.aio.insecure_channel(f"{self.host}:{self.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                response = await stub.Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=_PROBE_TIMEOUT_SECONDS
                )
            except grpc.aio.AioRpcError:
                return False
        return bool(response.status == _SERVING)


@dataclass(frozen=True)
class HttpHealthProbe:
    """Ready when `GET {path}` answers 200."""

    host: str
    port: int
    path: str = "/healthz"

    @property
    def description(self) -> str:
        return f"HTTP {self.path} on {self.host}:{self.port}"

    async def check(self) -> bool:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), _PROBE_TIMEOUT_SECONDS
            )
        except (OSError, TimeoutError):
            return False
        try:
            writer.write(
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}\r\nConnection: close\r\n\r\n".encode()
            )
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), _PROBE_TIMEOUT_SECONDS)
        except (OSError, TimeoutError):
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        parts = status_line.split()
        return len(parts) >= 2 and parts[1] == b"200"
