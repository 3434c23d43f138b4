"""Computation participants on Spanner: set params, confirm, fail (rules as in
`cmms.kingdom.db.participants`); the last one in moves the measurement in the same transaction."""

from __future__ import annotations

from typing import Any

from cmms.kingdom.db.participants import (
    FAILURE_PREFIX,
    ParticipantFailure,
    ParticipantView,
    all_others_in,
    expected_params_case,
    participant_view,
)
from cmms.kingdom.db.records import (
    FailureReason,
    MeasurementRecord,
    MeasurementState,
    ParticipantRecord,
    ParticipantState,
    RequisitionState,
)
from cmms.kingdom.db.spanner import reads
from cmms.kingdom.db.spanner.rows import update
from cmms.kingdom.db.spanner.store import SpannerKingdomStore, SpannerWriteTx
from cmms.kingdom.db.spanner.transitions import end_measurement, set_measurement_state
from cmms.kingdom.db.transitions import check_etag
from cmms.kingdom.errors import failed_precondition, invalid_argument, not_found
from cmms.kingdom.names import CertificateKey, OwnerKind


class SpannerParticipantRepository:
    def __init__(self, store: SpannerKingdomStore) -> None:
        self._store = store

    async def get(self, computation_id: int, duchy_id: str) -> ParticipantView:
        return await self._store.read(lambda s: _load(s, computation_id, duchy_id)[1])

    async def set_requisition_params(
        self,
        computation_id: int,
        duchy_id: str,
        certificate: CertificateKey,
        protocol_case: str,
        params: bytes,
        given_etag: str,
    ) -> ParticipantView:
        """CREATED -> REQUISITION_PARAMS_SET (LLv2) or READY (HMSS, TrusTee); `params` verbatim."""

        def work(tx: SpannerWriteTx) -> int:
            record = reads.certificate(tx.transaction, certificate.certificate_id)
            if (
                record is None
                or record.owner_kind != OwnerKind.DUCHY.value
                or record.owner_id != duchy_id
            ):
                raise failed_precondition(f"duchy certificate {certificate.name} not found")
            if not record.is_valid_at(tx.now_us):
                raise failed_precondition(f"duchy certificate {certificate.name} is not valid")
            measurement, view = _load(tx.transaction, computation_id, duchy_id)
            participant = view.participant
            check_etag(given_etag, participant.update_time_us)
            if expected_params_case(measurement) != protocol_case:
                raise invalid_argument(
                    f"requisition_params.{protocol_case} does not match the computation's protocol"
                )
            if measurement.measurement_state is not MeasurementState.PENDING_REQUISITION_PARAMS:
                raise failed_precondition(
                    f"measurement is {measurement.state}, not PENDING_REQUISITION_PARAMS"
                )
            if participant.participant_state is not ParticipantState.CREATED:
                raise failed_precondition(f"participant is {participant.state}, not CREATED")
            new_state = (
                ParticipantState.REQUISITION_PARAMS_SET
                if measurement.protocol_kind.has_confirmation_step
                else ParticipantState.READY
            )
            _update(
                tx,
                participant,
                state=new_state.value,
                duchy_certificate_id=certificate.certificate_id,
                requisition_params=params,
            )
            if all_others_in(view.snapshot, duchy_id, new_state):
                set_measurement_state(
                    tx, measurement, MeasurementState.PENDING_REQUISITION_FULFILLMENT
                )
                for requisition in view.snapshot.requisitions:
                    if requisition.requisition_state is RequisitionState.PENDING_PARAMS:
                        update(
                            tx,
                            "requisitions",
                            measurement_id=requisition.measurement_id,
                            requisition_id=requisition.requisition_id,
                            state=RequisitionState.UNFULFILLED.value,
                            update_time_us=tx.now_us,
                        )
            return measurement.measurement_id

        return await self._store.write_then_read(work, _reader_of_view(duchy_id))

    async def confirm(self, computation_id: int, duchy_id: str, given_etag: str) -> ParticipantView:
        """REQUISITION_PARAMS_SET -> READY; the last one moves the measurement to computing."""

        def work(tx: SpannerWriteTx) -> int:
            measurement, view = _load(tx.transaction, computation_id, duchy_id)
            participant = view.participant
            check_etag(given_etag, participant.update_time_us)
            if (
                measurement.measurement_state
                is not MeasurementState.PENDING_PARTICIPANT_CONFIRMATION
            ):
                raise failed_precondition(
                    f"measurement is {measurement.state}, not PENDING_PARTICIPANT_CONFIRMATION"
                )
            if participant.participant_state is not ParticipantState.REQUISITION_PARAMS_SET:
                raise failed_precondition(
                    f"participant is {participant.state}, not REQUISITION_PARAMS_SET"
                )
            _update(tx, participant, state=ParticipantState.READY.value)
            if all_others_in(view.snapshot, duchy_id, ParticipantState.READY):
                set_measurement_state(tx, measurement, MeasurementState.PENDING_COMPUTATION)
            return measurement.measurement_id

        return await self._store.write_then_read(work, _reader_of_view(duchy_id))

    async def fail(
        self, computation_id: int, duchy_id: str, failure: ParticipantFailure, given_etag: str
    ) -> ParticipantView:
        """Participant -> FAILED and measurement -> FAILED; FAILED_PRECONDITION once it ended."""

        def work(tx: SpannerWriteTx) -> int:
            measurement, view = _load(tx.transaction, computation_id, duchy_id)
            participant = view.participant
            check_etag(given_etag, participant.update_time_us)
            if measurement.measurement_state.is_terminal:
                raise failed_precondition(f"measurement is already {measurement.state}")
            _update(
                tx,
                participant,
                state=ParticipantState.FAILED.value,
                failure_child_reference_id=failure.child_reference_id,
                failure_message=failure.error_message,
                failure_time_us=failure.error_time_us,
                failure_stage_attempt=failure.stage_attempt,
            )
            end_measurement(
                tx,
                measurement,
                MeasurementState.FAILED,
                FailureReason.COMPUTATION_PARTICIPANT_FAILED,
                FAILURE_PREFIX + failure.error_message,
            )
            return measurement.measurement_id

        return await self._store.write_then_read(work, _reader_of_view(duchy_id))


def _load(
    reader: Any, computation_id: int, duchy_id: str
) -> tuple[MeasurementRecord, ParticipantView]:
    measurement = reads.measurement_by_computation(reader, computation_id)
    if measurement is None:
        raise not_found("computation not found")
    return measurement, participant_view(reads.snapshot(reader, measurement), duchy_id)


def _reader_of_view(duchy_id: str) -> Any:
    def read_back(reader: Any, measurement_id: int) -> ParticipantView:
        return participant_view(reads.snapshot_of(reader, measurement_id), duchy_id)

    return read_back


def _update(tx: SpannerWriteTx, participant: ParticipantRecord, **values: object) -> None:
    update(
        tx,
        "computation_participants",
        measurement_id=participant.measurement_id,
        duchy_id=participant.duchy_id,
        update_time_us=tx.now_us,
        **values,
    )
