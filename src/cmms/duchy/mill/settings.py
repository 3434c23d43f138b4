"""Settings of `cmms duchy mill`: every field is a flag and a `CMMS_<FIELD>` variable.

A mill job either carries the claim the scheduler made for it (`--claimed-computation-*`, all
three or none) and then keeps claiming work of that type until the queue is empty, or, with
`--poll`, claims work of `--computation-type` until stopped.
"""

from __future__ import annotations

import socket
from datetime import timedelta
from pathlib import Path

import grpc
from pydantic import Field, model_validator

from cmms.common.durations import Duration
from cmms.common.grpc import ChannelSettings, secure_channel
from cmms.common.grpc.settings import GrpcClientSettings
from cmms.protocols.stages import ProtocolType

MIB = 1024 * 1024


def parse_protocol(text: str) -> ProtocolType:
    """`HONEST_MAJORITY_SHARE_SHUFFLE`, `3`, `hmss`, ... -> the protocol."""
    aliases = {
        "LLV2": ProtocolType.LIQUID_LEGIONS_V2,
        "RO-LLV2": ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2,
        "RO_LLV2": ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2,
        "HMSS": ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE,
        "TRUSTEE": ProtocolType.TRUS_TEE,
    }
    cleaned = text.strip().upper()
    if cleaned in aliases:
        return aliases[cleaned]
    try:
        protocol = ProtocolType[cleaned] if not cleaned.isdigit() else ProtocolType(int(cleaned))
    except (KeyError, ValueError):
        raise ValueError(f"{text!r} is not a computation type") from None
    if protocol is ProtocolType.UNSPECIFIED:
        raise ValueError("the computation type must be set")
    return protocol


class MillSettings(GrpcClientSettings):
    duchy_name: str
    mill_id: str = Field(
        default="", description="lock owner; the scheduler passes the job name (default: host name)"
    )

    claimed_computation_type: str | None = Field(
        default=None, description="type of the computation the scheduler claimed"
    )
    claimed_computation_id: str | None = Field(
        default=None, description="global id of the computation the scheduler claimed"
    )
    claimed_computation_version: int | None = Field(
        default=None, description="version of the claimed computation's token"
    )
    computation_type: str | None = Field(
        default=None,
        description="type to claim work of (default: the claimed computation's type)",
    )
    poll: bool = Field(default=False, description="keep claiming work until stopped")
    polling_interval: Duration = Field(
        default=timedelta(seconds=2), gt=timedelta(0), description="pause when no work is found"
    )

    internal_api_target: str = Field(description="host:port of the duchy's internal API")
    internal_api_cert_host: str | None = None
    internal_api_deadline_seconds: float = Field(default=30.0, gt=0)
    kingdom_system_api_target: str = Field(description="host:port of the Kingdom's system API")
    kingdom_system_api_cert_host: str | None = None
    kingdom_public_api_target: str | None = Field(
        default=None, description="host:port of the Kingdom's public API (EDP certificates; HMSS)"
    )
    kingdom_public_api_cert_host: str | None = None
    kingdom_deadline_seconds: float = Field(default=30.0, gt=0)
    duchy_computation_control_target: dict[str, str] = Field(
        default_factory=dict,
        description="ComputationControl of each other duchy, as DUCHY_ID=host:port",
    )
    duchy_computation_control_cert_host: str | None = Field(
        default=None, description="TLS name of the other duchies' servers when it differs"
    )
    peer_deadline_seconds: float = Field(default=300.0, gt=0)

    blob_storage_url: str = Field(description="blob store of computation and requisition data")
    trust_config_file: Path | None = Field(
        default=None,
        description="root SKID -> party map; binds certificates to their owners (HMSS, LLv2)",
    )
    consent_signaling_certificate_resource_name: str = Field(
        description="the Kingdom's name of this duchy's consent-signaling certificate"
    )
    consent_signaling_certificate_der_file: Path | None = None
    consent_signaling_private_key_der_file: Path

    key_encryption_key_uri: str | None = Field(
        default=None,
        description="KEK sealing per-computation private keys (local-kms://, gcp-kms://, ...)",
    )
    private_key_store_url: str | None = Field(
        default=None, description="blob store of sealed private keys (default: blob storage)"
    )

    parallelism: int = Field(default=1, ge=1, description="worker processes of the LLv2 kernels")
    work_lock_duration: Duration = Field(
        default=timedelta(minutes=5), gt=timedelta(0), description="lock taken by each claim"
    )
    bytes_per_chunk: int = Field(
        default=1 * MIB, ge=1, le=4 * MIB, description="body chunk size sent to other duchies"
    )
    maximum_attempts: int = Field(
        default=10, ge=1, description="attempts of a stage before failing"
    )

    @model_validator(mode="after")
    def _claim_is_complete(self) -> MillSettings:
        given = [
            self.claimed_computation_type is not None,
            self.claimed_computation_id is not None,
            self.claimed_computation_version is not None,
        ]
        if any(given) and not all(given):
            raise ValueError(
                "--claimed-computation-type, --claimed-computation-id and "
                "--claimed-computation-version go together"
            )
        if self.work_type() is None:
            raise ValueError("give a claimed computation or --computation-type")
        return self

    def claimed_type(self) -> ProtocolType | None:
        if self.claimed_computation_type is None:
            return None
        return parse_protocol(self.claimed_computation_type)

    def work_type(self) -> ProtocolType | None:
        if self.computation_type is not None:
            return parse_protocol(self.computation_type)
        return self.claimed_type()

    def resolved_mill_id(self) -> str:
        return self.mill_id or socket.gethostname()

    def internal_api_channel(self) -> grpc.aio.Channel:
        return self._channel(self.internal_api_target, self.internal_api_cert_host)

    def kingdom_system_channel(self) -> grpc.aio.Channel:
        return self._channel(self.kingdom_system_api_target, self.kingdom_system_api_cert_host)

    def kingdom_public_channel(self) -> grpc.aio.Channel | None:
        if self.kingdom_public_api_target is None:
            return None
        return self._channel(self.kingdom_public_api_target, self.kingdom_public_api_cert_host)

    def peer_channels(self) -> dict[str, grpc.aio.Channel]:
        return {
            peer: self._channel(target, self.duchy_computation_control_cert_host)
            for peer, target in self.duchy_computation_control_target.items()
            if peer != self.duchy_name
        }

    def _channel(self, target: str, cert_host: str | None) -> grpc.aio.Channel:
        return secure_channel(
            target, self.client_tls(), ChannelSettings(target_name_override=cert_host)
        )
