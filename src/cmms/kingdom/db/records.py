"""Rows as frozen dataclasses, and the state enums stored in them.

Field names equal column names, so a row converts with `Record.of(row)`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Self

from sqlalchemy import Row


class MeasurementState(enum.StrEnum):
    PENDING_REQUISITION_PARAMS = "PENDING_REQUISITION_PARAMS"
    PENDING_REQUISITION_FULFILLMENT = "PENDING_REQUISITION_FULFILLMENT"
    PENDING_PARTICIPANT_CONFIRMATION = "PENDING_PARTICIPANT_CONFIRMATION"
    PENDING_COMPUTATION = "PENDING_COMPUTATION"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_MEASUREMENT_STATES


TERMINAL_MEASUREMENT_STATES = frozenset(
    {MeasurementState.SUCCEEDED, MeasurementState.FAILED, MeasurementState.CANCELLED}
)
PENDING_MEASUREMENT_STATES = frozenset(MeasurementState) - TERMINAL_MEASUREMENT_STATES
# What the duchies' stream shows: every state a duchy acts on, terminal ones included.
STREAMED_MEASUREMENT_STATES = frozenset(MeasurementState) - {
    MeasurementState.PENDING_REQUISITION_FULFILLMENT
}


class RequisitionState(enum.StrEnum):
    PENDING_PARAMS = "PENDING_PARAMS"
    UNFULFILLED = "UNFULFILLED"
    FULFILLED = "FULFILLED"
    REFUSED = "REFUSED"
    WITHDRAWN = "WITHDRAWN"


OPEN_REQUISITION_STATES = frozenset({RequisitionState.PENDING_PARAMS, RequisitionState.UNFULFILLED})


class ParticipantState(enum.StrEnum):
    CREATED = "CREATED"
    REQUISITION_PARAMS_SET = "REQUISITION_PARAMS_SET"
    READY = "READY"
    FAILED = "FAILED"


class Protocol(enum.StrEnum):
    LLV2 = "LLV2"
    REACH_ONLY_LLV2 = "REACH_ONLY_LLV2"
    HMSS = "HMSS"
    TRUSTEE = "TRUSTEE"
    DIRECT = "DIRECT"

    @property
    def has_confirmation_step(self) -> bool:
        return self in (Protocol.LLV2, Protocol.REACH_ONLY_LLV2)

    @property
    def preassigns_fulfilling_duchy(self) -> bool:
        return self in (Protocol.HMSS, Protocol.TRUSTEE)


class RevocationState(enum.StrEnum):
    NONE = "NONE"
    HOLD = "HOLD"
    REVOKED = "REVOKED"


class FailureReason(enum.StrEnum):
    CERTIFICATE_REVOKED = "CERTIFICATE_REVOKED"
    REQUISITION_REFUSED = "REQUISITION_REFUSED"
    COMPUTATION_PARTICIPANT_FAILED = "COMPUTATION_PARTICIPANT_FAILED"


class _Record:
    @classmethod
    def of(cls, row: Row[Any]) -> Self:
        return cls.from_mapping(row._mapping)

    @classmethod
    def from_mapping(cls, mapping: Mapping[Any, Any]) -> Self:
        """From column values by name (how backends other than SQLAlchemy build records)."""
        return cls(**{f.name: mapping[f.name] for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class CertificateRecord(_Record):
    certificate_id: int
    owner_kind: str
    owner_id: str
    subject_key_identifier: bytes
    x509_der: bytes
    not_valid_before_us: int
    not_valid_after_us: int
    revocation_state: str
    create_time_us: int
    update_time_us: int

    def is_valid_at(self, now_us: int) -> bool:
        """Not on hold, not revoked, and inside its validity window."""
        return (
            self.revocation_state == RevocationState.NONE
            and self.not_valid_before_us <= now_us <= self.not_valid_after_us
        )


@dataclass(frozen=True, slots=True)
class MeasurementConsumerRecord(_Record):
    measurement_consumer_id: str
    display_name: str
    public_key: bytes | None
    certificate_id: int | None
    create_time_us: int
    update_time_us: int


@dataclass(frozen=True, slots=True)
class Capabilities:
    hmss_supported: bool = False
    trustee_supported: bool = False
    noise_none_supported: bool = False
    noise_dtl_supported: bool = False


@dataclass(frozen=True, slots=True)
class DataProviderRecord:
    data_provider_id: str
    display_name: str
    public_key: bytes | None
    certificate_id: int | None
    required_duchies: tuple[str, ...]
    capabilities: Capabilities
    create_time_us: int
    update_time_us: int

    @classmethod
    def of(cls, row: Row[Any]) -> DataProviderRecord:
        return cls.from_mapping(row._mapping)

    @classmethod
    def from_mapping(cls, m: Mapping[Any, Any]) -> DataProviderRecord:
        return cls(
            data_provider_id=m["data_provider_id"],
            display_name=m["display_name"],
            public_key=m["public_key"],
            certificate_id=m["certificate_id"],
            required_duchies=tuple(json.loads(m["required_duchies"])),
            capabilities=Capabilities(
                hmss_supported=m["hmss_supported"],
                trustee_supported=m["trustee_supported"],
                noise_none_supported=m["noise_none_supported"],
                noise_dtl_supported=m["noise_dtl_supported"],
            ),
            create_time_us=m["create_time_us"],
            update_time_us=m["update_time_us"],
        )


@dataclass(frozen=True, slots=True)
class EventGroupRecord:
    event_group_id: int
    data_provider_id: str
    measurement_consumer_id: str
    event_group_reference_id: str
    display_name: str
    media_types: tuple[str, ...]
    data_availability_start_us: int | None
    data_availability_end_us: int | None
    create_time_us: int

    @classmethod
    def of(cls, row: Row[Any]) -> EventGroupRecord:
        return cls.from_mapping(row._mapping)

    @classmethod
    def from_mapping(cls, m: Mapping[Any, Any]) -> EventGroupRecord:
        return cls(
            event_group_id=m["event_group_id"],
            data_provider_id=m["data_provider_id"],
            measurement_consumer_id=m["measurement_consumer_id"],
            event_group_reference_id=m["event_group_reference_id"],
            display_name=m["display_name"],
            media_types=tuple(json.loads(m["media_types"])),
            data_availability_start_us=m["data_availability_start_us"],
            data_availability_end_us=m["data_availability_end_us"],
            create_time_us=m["create_time_us"],
        )


@dataclass(frozen=True, slots=True)
class MeasurementRecord(_Record):
    measurement_id: int
    measurement_consumer_id: str
    computation_id: int | None
    measurement_consumer_certificate_id: int
    measurement_reference_id: str
    request_id: str | None
    api_version: str
    measurement_spec: bytes
    measurement_spec_signature: bytes
    measurement_spec_signature_algorithm_oid: str
    protocol: str
    protocol_config: bytes
    duchy_protocol_config: bytes | None
    aggregator_duchy_id: str | None
    state: str
    failure_reason: str | None
    failure_message: str | None
    result_duchy_id: str | None
    result_certificate_id: int | None
    encrypted_result: bytes | None
    result_api_version: str | None
    create_time_us: int
    update_time_us: int

    @property
    def measurement_state(self) -> MeasurementState:
        return MeasurementState(self.state)

    @property
    def protocol_kind(self) -> Protocol:
        return Protocol(self.protocol)


@dataclass(frozen=True, slots=True)
class RequisitionRecord(_Record):
    requisition_id: int
    measurement_id: int
    position: int
    data_provider_id: str
    data_provider_certificate_id: int
    data_provider_public_key: bytes
    encrypted_requisition_spec: bytes
    nonce_hash: bytes
    nonce: bytes | None
    state: str
    fulfilling_duchy_id: str | None
    refusal_justification: str | None
    refusal_message: str | None
    fulfillment_context: bytes | None
    direct_encrypted_result: bytes | None
    direct_result_certificate_id: int | None
    update_time_us: int

    @property
    def requisition_state(self) -> RequisitionState:
        return RequisitionState(self.state)

    @property
    def nonce_value(self) -> int | None:
        return None if self.nonce is None else int.from_bytes(self.nonce, "big")


@dataclass(frozen=True, slots=True)
class ParticipantRecord(_Record):
    measurement_id: int
    duchy_id: str
    position: int
    state: str
    duchy_certificate_id: int | None
    requisition_params: bytes | None
    failure_child_reference_id: str | None
    failure_message: str | None
    failure_time_us: int | None
    failure_stage_attempt: bytes | None
    update_time_us: int

    @property
    def participant_state(self) -> ParticipantState:
        return ParticipantState(self.state)


@dataclass(frozen=True, slots=True)
class LogEntryRecord(_Record):
    log_entry_id: int
    measurement_id: int
    duchy_id: str | None
    message: str
    participant_child_reference_id: str | None
    stage_attempt: bytes | None
    error_type: str | None
    error_time_us: int | None
    create_time_us: int


@dataclass(frozen=True)
class MeasurementSnapshot:
    """A measurement with its requisitions and participants (in their stored order), and the
    certificates they name, as read in one transaction."""

    measurement: MeasurementRecord
    requisitions: tuple[RequisitionRecord, ...]
    participants: tuple[ParticipantRecord, ...]
    certificates: dict[int, CertificateRecord]

    def requisition(self, requisition_id: int) -> RequisitionRecord | None:
        return next((r for r in self.requisitions if r.requisition_id == requisition_id), None)

    def participant(self, duchy_id: str) -> ParticipantRecord | None:
        return next((p for p in self.participants if p.duchy_id == duchy_id), None)
