"""The repository interfaces every Kingdom database backend implements.

The SQLAlchemy repositories (SQLite, PostgreSQL) and the Spanner ones of `cmms.kingdom.db.spanner`
satisfy these Protocols structurally; servicers, jobs and seeding depend on the Protocols only.
Semantics (state machine, errors, idempotency) are documented on the SQLAlchemy classes, and the
tests of `tests/unit/kingdom` run unchanged against every backend.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from cmms.kingdom.config import DuchyConfig
from cmms.kingdom.db.computations import ComputationResult, StreamPosition
from cmms.kingdom.db.event_groups import NewEventGroup
from cmms.kingdom.db.log_entries import NewLogEntry
from cmms.kingdom.db.measurements import NewMeasurement, Page
from cmms.kingdom.db.participants import ParticipantFailure, ParticipantView
from cmms.kingdom.db.records import (
    Capabilities,
    CertificateRecord,
    DataProviderRecord,
    EventGroupRecord,
    LogEntryRecord,
    MeasurementConsumerRecord,
    MeasurementSnapshot,
    MeasurementState,
    RequisitionState,
    RevocationState,
)
from cmms.kingdom.db.requisitions import Fulfilment, RequisitionView
from cmms.kingdom.names import CertificateKey, Owner


class CertificateRepositoryInterface(Protocol):
    async def create(self, owner: Owner, der: bytes) -> CertificateRecord: ...

    async def ensure(self, owner: Owner, der: bytes) -> CertificateRecord: ...

    async def get(self, key: CertificateKey) -> CertificateRecord: ...

    async def find(self, certificate_id: int) -> CertificateRecord | None: ...

    async def list_owned(
        self, owner: Owner, subject_key_identifiers: Sequence[bytes] = ()
    ) -> list[CertificateRecord]: ...

    async def revoke(self, key: CertificateKey, target: RevocationState) -> CertificateRecord: ...

    async def release_hold(self, key: CertificateKey) -> CertificateRecord: ...


class PartyRepositoryInterface(Protocol):
    async def sync_duchies(self, configured: Sequence[DuchyConfig]) -> None: ...

    async def upsert_measurement_consumer(
        self,
        mc_id: str,
        *,
        display_name: str = "",
        public_key: bytes | None = None,
        certificate_id: int | None = None,
    ) -> MeasurementConsumerRecord: ...

    async def upsert_data_provider(
        self,
        dp_id: str,
        *,
        display_name: str = "",
        public_key: bytes | None = None,
        certificate_id: int | None = None,
        required_duchies: Sequence[str] | None = None,
        capabilities: Capabilities | None = None,
    ) -> DataProviderRecord: ...

    async def get_measurement_consumer(self, mc_id: str) -> MeasurementConsumerRecord: ...

    async def get_data_provider(self, dp_id: str) -> DataProviderRecord: ...

    async def replace_capabilities(
        self, dp_id: str, capabilities: Capabilities
    ) -> DataProviderRecord: ...


class EventGroupRepositoryInterface(Protocol):
    async def create(self, new: NewEventGroup) -> EventGroupRecord: ...

    async def get(self, event_group_id: int) -> EventGroupRecord: ...

    async def find(
        self,
        *,
        data_provider_id: str | None = None,
        measurement_consumer_id: str | None = None,
        data_provider_filter: tuple[str, ...] = (),
    ) -> list[EventGroupRecord]: ...


class MeasurementRepositoryInterface(Protocol):
    async def create(self, new: NewMeasurement) -> MeasurementSnapshot: ...

    async def get(self, mc_id: str, measurement_id: int) -> MeasurementSnapshot: ...

    async def list_page(
        self,
        mc_id: str,
        states: Collection[MeasurementState] = (),
        page_size: int = 50,
        page_token: str = "",
    ) -> Page: ...

    async def cancel(
        self, mc_id: str, measurement_id: int, given_etag: str = ""
    ) -> MeasurementSnapshot: ...

    async def cancel_expired(
        self, created_before_us: int, *, batch_size: int = 1000, dry_run: bool = False
    ) -> list[int]: ...


class RequisitionRepositoryInterface(Protocol):
    async def list_for_data_provider(
        self,
        dp_id: str,
        states: Collection[RequisitionState] = (),
        measurement_states: Collection[MeasurementState] = (),
        *,
        page_size: int = 10,
        after_requisition_id: int = 0,
    ) -> tuple[list[RequisitionView], int | None]: ...

    async def list_for_measurement(
        self, mc_id: str, measurement_id: int
    ) -> list[RequisitionView]: ...

    async def get(self, dp_id: str, requisition_id: int) -> RequisitionView: ...

    async def refuse(
        self, dp_id: str, requisition_id: int, justification: str, message: str, given_etag: str
    ) -> RequisitionView: ...

    async def fulfill_direct(
        self,
        dp_id: str,
        requisition_id: int,
        fulfilment: Fulfilment,
        encrypted_result: bytes,
        result_certificate_id: int | None,
    ) -> RequisitionView: ...

    async def fulfill_for_computation(
        self, duchy_id: str, computation_id: int, requisition_id: int, fulfilment: Fulfilment
    ) -> RequisitionView: ...


class ParticipantRepositoryInterface(Protocol):
    async def get(self, computation_id: int, duchy_id: str) -> ParticipantView: ...

    async def set_requisition_params(
        self,
        computation_id: int,
        duchy_id: str,
        certificate: CertificateKey,
        protocol_case: str,
        params: bytes,
        given_etag: str,
    ) -> ParticipantView: ...

    async def confirm(
        self, computation_id: int, duchy_id: str, given_etag: str
    ) -> ParticipantView: ...

    async def fail(
        self, computation_id: int, duchy_id: str, failure: ParticipantFailure, given_etag: str
    ) -> ParticipantView: ...


class ComputationRepositoryInterface(Protocol):
    async def get(self, computation_id: int) -> MeasurementSnapshot: ...

    async def active_after(
        self, duchy_id: str, after: StreamPosition | None, limit: int
    ) -> list[MeasurementSnapshot]: ...

    async def set_result(
        self, duchy_id: str, computation_id: int, result: ComputationResult
    ) -> MeasurementSnapshot: ...


class LogEntryRepositoryInterface(Protocol):
    async def create(self, computation_id: int, duchy_id: str, entry: NewLogEntry) -> int: ...

    async def list_for_measurement(self, measurement_id: int) -> list[LogEntryRecord]: ...
