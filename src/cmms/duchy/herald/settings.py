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
    duchy_name: str
    kingdom_system_api_target: str
    # TLS host name of the Kingdom's system API when it differs from the target's host.
    kingdom_system_api_cert_host: str | None = None
    kingdom_deadline_seconds: float = Field(default=30.0, gt=0)
    # Longer than the Kingdom's own stream lifetime (about 10 minutes).
    stream_deadline_seconds: float = Field(default=660.0, gt=0)
    internal_api_target: str
    internal_api_cert_host: str | None = None
    internal_api_deadline_seconds: float = Field(default=30.0, gt=0)

    # YAML or JSON naming this duchy's roles (docs/HERALD.md).
    protocols_setup_config: Path
    # HMSS workers: KEK URI (local-kms://<path>, gcp-kms://…, aws-kms://…) sealing the
    # per-computation private keys, and the blob store they are written to.
    key_encryption_key_uri: str | None = None
    private_key_store_url: str | None = None
    blobs_storage_bucket: str = DEFAULT_BLOBS_BUCKET

    max_concurrency: int = Field(default=5, ge=1)
    # Tries per computation for transient errors, and per stream for reconnections.
    max_attempts: int = Field(default=5, ge=1)
    initial_backoff_seconds: float = Field(default=0.5, ge=0)
    max_backoff_seconds: float = Field(default=30.0, ge=0)
    # Comma-separated terminal states whose local computations are deleted once seen.
    deletable_computation_states: str = ""
    # Names this Herald in failures it reports to the Kingdom (default: the host name).
    herald_id: str = ""

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
