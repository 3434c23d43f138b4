"""Settings of `cmms duchy herald`: every field is a flag and a `CMMS_<FIELD>` variable."""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
from pydantic import Field, field_validator

from cmms.api.system.v1 import computation_pb2
from cmms.common.grpc import ChannelSettings, secure_channel
from cmms.common.grpc.settings import GrpcClientSettings
from cmms.duchy.herald.starters.common import DEFAULT_BLOBS_BUCKET

State = computation_pb2.Computation.State
DELETABLE_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


class HeraldSettings(GrpcClientSettings):
    duchy_name: str = Field(description="this duchy's id, as the Kingdom knows it")
    kingdom_system_api_target: str = Field(description="host:port of the Kingdom's system API")
    kingdom_system_api_cert_host: str | None = Field(
        default=None, description="TLS host name of the system API, if not the target's host"
    )
    kingdom_deadline_seconds: float = Field(default=30.0, gt=0, description="unary call deadline")
    stream_deadline_seconds: float = Field(
        default=660.0,
        gt=0,
        description="deadline of one StreamActiveComputations call (above the Kingdom's ~10 min)",
    )
    internal_api_target: str = Field(description="host:port of this duchy's internal API")
    internal_api_cert_host: str | None = Field(
        default=None, description="TLS host name of the internal API, if not the target's host"
    )
    internal_api_deadline_seconds: float = Field(default=30.0, gt=0, description="call deadline")
    protocols_setup_config: Path = Field(
        description="YAML or JSON naming each protocol's aggregator and workers (docs/HERALD.md)"
    )
    key_encryption_key_uri: str | None = Field(
        default=None,
        description="HMSS workers: KEK sealing per-computation private keys "
        "(local-kms://PATH, gcp-kms://..., aws-kms://...)",
    )
    private_key_store_url: str | None = Field(
        default=None,
        description="HMSS workers: blob store for the sealed private keys (file://, gs://, s3://; "
        "default: --blob-storage-url, as for the mills)",
    )
    blob_storage_url: str | None = Field(
        default=None, description="the duchy's blob store (only used for the private keys)"
    )
    blobs_storage_bucket: str = Field(
        default=DEFAULT_BLOBS_BUCKET, description="first part of each computation's blob prefix"
    )
    max_concurrency: int = Field(
        default=5, ge=1, description="computations processed at the same time"
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        description="tries per computation on transient errors, and stream failures in a row",
    )
    stream_max_failures: int | None = Field(
        default=None,
        ge=1,
        description="Kingdom stream failures in a row that end the Herald, for its supervisor "
        "to restart it (default: --max-attempts)",
    )
    initial_backoff_seconds: float = Field(default=0.5, ge=0, description="first retry delay")
    max_backoff_seconds: float = Field(default=30.0, ge=0, description="longest retry delay")
    deletable_computation_states: str = Field(
        default="",
        description="comma-separated SUCCEEDED, FAILED, CANCELLED: delete local computations "
        "once the Kingdom reports them so",
    )
    herald_id: str = Field(
        default="", description="names this Herald in failures it reports (default: host name)"
    )

    @field_validator("deletable_computation_states")
    @classmethod
    def _terminal_states_only(cls, value: str) -> str:
        for name in _split(value):
            if name not in DELETABLE_STATES:
                raise ValueError(
                    f"{name!r} is not a terminal state ({', '.join(DELETABLE_STATES)})"
                )
        return value

    def resolved_herald_id(self) -> str:
        return self.herald_id or socket.gethostname()

    def resolved_private_key_store_url(self) -> str | None:
        return self.private_key_store_url or self.blob_storage_url

    def deletable_states(self) -> frozenset[int]:
        return frozenset(State.Value(name) for name in _split(self.deletable_computation_states))

    def kingdom_channel(self) -> grpc.aio.Channel:
        return secure_channel(
            self.kingdom_system_api_target,
            self.client_tls(),
            ChannelSettings(target_name_override=self.kingdom_system_api_cert_host),
        )

    def internal_api_channel(self) -> grpc.aio.Channel:
        return secure_channel(
            self.internal_api_target,
            self.client_tls(),
            ChannelSettings(target_name_override=self.internal_api_cert_host),
        )


def _split(value: str) -> list[str]:
    return [part.strip().upper() for part in value.split(",") if part.strip()]
