"""Settings of the duchy's servers: every field is a CLI flag and a `CMMS_*` variable.

Shared TLS and port settings come from `GrpcServerSettings`; each deployable adds what it talks to.
"""

from __future__ import annotations

import grpc
from pydantic import Field

from cmms.common.grpc import ChannelSettings, ClientTls, secure_channel
from cmms.common.grpc.settings import GrpcServerSettings
from cmms.common.identity import Principal

MIB = 1024 * 1024
DEFAULT_MAX_PAYLOAD_BYTES = 4 * 1024 * MIB
_BLOBS = "blob store URL: file:///DIR, memory://NAME, s3://BUCKET/PREFIX or gs://BUCKET/PREFIX"


class DuchyServerSettings(GrpcServerSettings):
    duchy_name: str = Field(description="this duchy's id, e.g. worker1")

    @property
    def duchy(self) -> Principal:
        return Principal.duchy(self.duchy_name)


class InternalApiSettings(DuchyServerSettings):
    database_url: str = Field(
        description=(
            "sqlite:///PATH, postgresql://USER@HOST:PORT/DB or "
            "spanner://projects/P/instances/I/databases/D"
        )
    )
    blob_storage_url: str = Field(description=_BLOBS)
    # Development convenience; deployments run `cmms duchy db migrate` before starting.
    migrate: bool = Field(default=False, description="run the schema migrations before serving")


class InternalApiClientSettings(DuchyServerSettings):
    internal_api_target: str = Field(description="host:port of this duchy's internal API")
    internal_api_cert_host: str | None = Field(
        default=None, description="host name in the internal API's certificate, if not the target's"
    )
    internal_api_deadline_seconds: float = Field(
        default=30.0, gt=0, description="deadline of each internal API call, in seconds"
    )

    def internal_api_channel(self, idempotent_methods: tuple[str, ...] = ()) -> grpc.aio.Channel:
        return _channel(
            self.internal_api_target,
            self.client_tls(),
            self.internal_api_cert_host,
            idempotent_methods,
        )


class AsyncComputationControlSettings(InternalApiClientSettings):
    max_advance_attempts: int = Field(
        default=10, ge=1, description="tries of an advance that races another (then ABORTED)"
    )
    advance_initial_backoff_seconds: float = Field(
        default=0.5, ge=0, description="first backoff between tries; x1.5 each time, +-50%"
    )


class ComputationControlSettings(InternalApiClientSettings):
    async_computation_control_target: str = Field(
        description="host:port of this duchy's async computation control server"
    )
    async_computation_control_cert_host: str | None = Field(
        default=None, description="host name in its certificate, if not the target's"
    )
    async_computation_control_deadline_seconds: float = Field(
        default=30.0, gt=0, description="deadline of each async control call, in seconds"
    )
    blob_storage_url: str = Field(description=_BLOBS)
    max_payload_bytes: int = Field(
        default=DEFAULT_MAX_PAYLOAD_BYTES, gt=0, description="largest stage input accepted"
    )

    def async_channel(self) -> grpc.aio.Channel:
        return _channel(
            self.async_computation_control_target,
            self.client_tls(),
            self.async_computation_control_cert_host,
            (),
        )


class RequisitionFulfillmentSettings(InternalApiClientSettings):
    kingdom_system_api_target: str = Field(description="host:port of the Kingdom's system API")
    kingdom_system_api_cert_host: str | None = Field(
        default=None, description="host name in the Kingdom's certificate, if not the target's"
    )
    kingdom_deadline_seconds: float = Field(
        default=30.0, gt=0, description="deadline of each Kingdom call, in seconds"
    )
    blob_storage_url: str = Field(description=_BLOBS)
    max_payload_bytes: int = Field(
        default=DEFAULT_MAX_PAYLOAD_BYTES, gt=0, description="largest upload accepted"
    )

    def kingdom_channel(self) -> grpc.aio.Channel:
        # The Kingdom answers an exact retry of a fulfilment (same duchy, same nonce) with the
        # unchanged requisition, so the channel may retry it when the Kingdom is unreachable.
        return _channel(
            self.kingdom_system_api_target,
            self.client_tls(),
            self.kingdom_system_api_cert_host,
            ("/cmms.api.system.v1.Requisitions/FulfillRequisition",),
        )


def _channel(
    target: str, tls: ClientTls, cert_host: str | None, idempotent_methods: tuple[str, ...]
) -> grpc.aio.Channel:
    return secure_channel(
        target,
        tls,
        ChannelSettings(target_name_override=cert_host, idempotent_methods=idempotent_methods),
    )
