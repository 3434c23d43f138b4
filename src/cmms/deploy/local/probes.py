"""Readiness probes for supervised children: gRPC health (plaintext port), HTTP `/healthz`, and
an EDP simulator's event groups at the Kingdom."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cmms.api.public.v1 import event_groups_pb2, event_groups_pb2_grpc
from cmms.common.grpc import ClientTls, secure_channel
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout

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


@dataclass(frozen=True)
class EventGroupsProbe:
    """Ready when every consumer sees an event group of the EDP (its simulator has started).

    The consumers list event groups through the Kingdom's public API with their own mTLS
    identity, exactly as `cmms mc measure` will; an EDP declares its capabilities before it
    creates its groups, so both are in place once this passes.
    """

    kingdom_public_api: str
    pki: PkiLayout
    data_provider: str
    measurement_consumers: tuple[str, ...]

    @property
    def description(self) -> str:
        return f"event groups of {self.data_provider} at the Kingdom"

    async def check(self) -> bool:
        prefix = f"dataProviders/{self.data_provider}/"
        for consumer in self.measurement_consumers:
            principal = Principal.measurement_consumer(consumer)
            channel = secure_channel(
                self.kingdom_public_api, ClientTls.from_pki(self.pki, principal)
            )
            try:
                response = await event_groups_pb2_grpc.EventGroupsStub(channel).ListEventGroups(
                    event_groups_pb2.ListEventGroupsRequest(
                        parent=principal.resource_name, page_size=500
                    ),
                    timeout=_PROBE_TIMEOUT_SECONDS,
                )
            except grpc.aio.AioRpcError:
                return False
            finally:
                await channel.close()
            if not any(group.name.startswith(prefix) for group in response.event_groups):
                return False
        return True
