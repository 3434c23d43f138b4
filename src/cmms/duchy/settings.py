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


class DuchyServerSettings(GrpcServerSettings):
    duchy_name: str

    @property
    def duchy(self) -> Principal:
        return Principal.duchy(self.duchy_name)


class InternalApiSettings(DuchyServerSettings):
    database_url: str
    blob_storage_url: str
    # Run the schema migrations before serving (development; production runs `db migrate`).
    migrate: bool = False


class InternalApiClientSettings(DuchyServerSettings):
    internal_api_target: str
    # TLS host name of the internal API server when it differs from the target's host.
    internal_api_cert_host: str | None = None
    internal_api_deadline_seconds: float = Field(default=30.0, gt=0)

    def internal_api_channel(self, idempotent_methods: tuple[str, ...] = ()) -> grpc.aio.Channel:
        return _channel(
            self.internal_api_target,
            self.client_tls(),
            self.internal_api_cert_host,
            idempotent_methods,
        )


class AsyncComputationControlSettings(InternalApiClientSettings):
    max_advance_attempts: int = Field(default=10, ge=1)
    advance_initial_backoff_seconds: float = Field(default=0.5, ge=0)


class ComputationControlSettings(InternalApiClientSettings):
    async_computation_control_target: str
    async_computation_control_cert_host: str | None = None
    async_computation_control_deadline_seconds: float = Field(default=30.0, gt=0)
    blob_storage_url: str
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, gt=0)

    def async_channel(self) -> grpc.aio.Channel:
        return _channel(
            self.async_computation_control_target,
            self.client_tls(),
            self.async_computation_control_cert_host,
            (),
        )


class RequisitionFulfillmentSettings(InternalApiClientSettings):
    kingdom_system_api_target: str
    kingdom_system_api_cert_host: str | None = None
    kingdom_deadline_seconds: float = Field(default=30.0, gt=0)
    blob_storage_url: str
    max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, gt=0)

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
