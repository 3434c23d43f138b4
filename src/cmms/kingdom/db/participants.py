"""Computation participants: set params, confirm, fail; each may advance the measurement.

Last one in: the call that leaves every participant in the awaited state moves the measurement,
inside the same write transaction (§1.13).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update

from cmms.kingdom.db import reads
from cmms.kingdom.db.records import (
    FailureReason,
    MeasurementRecord,
    MeasurementSnapshot,
    MeasurementState,
    ParticipantRecord,
    ParticipantState,
    Protocol,
    RequisitionState,
)
from cmms.kingdom.db.schema import computation_participants, requisitions
from cmms.kingdom.db.store import KingdomStore, WriteTx
from cmms.kingdom.db.transitions import check_etag, end_measurement, set_measurement_state
from cmms.kingdom.errors import failed_precondition, invalid_argument, not_found
from cmms.kingdom.names import CertificateKey, OwnerKind

FAILURE_PREFIX = "Computation Participant failed. "


@dataclass(frozen=True)
class ParticipantView:
    participant: ParticipantRecord
    snapshot: MeasurementSnapshot


@dataclass(frozen=True)
class ParticipantFailure:
    child_reference_id: str
    error_message: str
    error_time_us: int | None
    stage_attempt: bytes | None


class ParticipantRepository:
    def __init__(self, store: KingdomStore) -> None:
        self._store = store

    async def get(self, computation_id: int, duchy_id: str) -> ParticipantView:
        async with self._store.read() as connection:
            measurement = await reads.measurement_by_computation(connection, computation_id)
            if measurement is None:
                raise not_found("computation not found")
            return participant_view(await reads.snapshot(connection, measurement), duchy_id)

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
        async with self._store.write() as tx:
            record = await reads.certificate(tx.connection, certificate.certificate_id)
            if (
                record is None
                or record.owner_kind != OwnerKind.DUCHY.value
                or record.owner_id != duchy_id
            ):
                raise failed_precondition(f"duchy certificate {certificate.name} not found")
            if not record.is_valid_at(tx.now_us):
                raise failed_precondition(f"duchy certificate {certificate.name} is not valid")
            measurement, view = await _load(tx, computation_id, duchy_id)
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
            await _update(
                tx,
                participant,
                state=new_state.value,
                duchy_certificate_id=certificate.certificate_id,
                requisition_params=params,
            )
            if all_others_in(view.snapshot, duchy_id, new_state):
                await set_measurement_state(
                    tx, measurement, MeasurementState.PENDING_REQUISITION_FULFILLMENT
                )
                await tx.connection.execute(
                    update(requisitions)
                    .where(
                        requisitions.c.measurement_id == measurement.measurement_id,
                        requisitions.c.state == RequisitionState.PENDING_PARAMS.value,
                    )
                    .values(state=RequisitionState.UNFULFILLED.value, update_time_us=tx.now_us)
                )
            return await _reload(tx, measurement, duchy_id)

    async def confirm(self, computation_id: int, duchy_id: str, given_etag: str) -> ParticipantView:
        """REQUISITION_PARAMS_SET -> READY; the last one moves the measurement to computing."""
        async with self._store.write() as tx:
            measurement, view = await _load(tx, computation_id, duchy_id)
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
            await _update(tx, participant, state=ParticipantState.READY.value)
            if all_others_in(view.snapshot, duchy_id, ParticipantState.READY):
                await set_measurement_state(tx, measurement, MeasurementState.PENDING_COMPUTATION)
            return await _reload(tx, measurement, duchy_id)

    async def fail(
        self, computation_id: int, duchy_id: str, failure: ParticipantFailure, given_etag: str
    ) -> ParticipantView:
        """Participant -> FAILED and measurement -> FAILED; FAILED_PRECONDITION once it ended."""
        async with self._store.write() as tx:
            measurement, view = await _load(tx, computation_id, duchy_id)
            participant = view.participant
            check_etag(given_etag, participant.update_time_us)
            if measurement.measurement_state.is_terminal:
                raise failed_precondition(f"measurement is already {measurement.state}")
            await _update(
                tx,
                participant,
                state=ParticipantState.FAILED.value,
                failure_child_reference_id=failure.child_reference_id,
                failure_message=failure.error_message,
                failure_time_us=failure.error_time_us,
                failure_stage_attempt=failure.stage_attempt,
            )
            await end_measurement(
                tx,
                measurement,
                MeasurementState.FAILED,
                FailureReason.COMPUTATION_PARTICIPANT_FAILED,
                FAILURE_PREFIX + failure.error_message,
            )
            return await _reload(tx, measurement, duchy_id)


def expected_params_case(measurement: MeasurementRecord) -> str:
    return {
        Protocol.LLV2: "liquid_legions_v2",
        Protocol.REACH_ONLY_LLV2: "reach_only_liquid_legions_v2",
        Protocol.HMSS: "honest_majority_share_shuffle",
        Protocol.TRUSTEE: "trus_tee",
    }.get(measurement.protocol_kind, "")


def participant_view(snapshot: MeasurementSnapshot, duchy_id: str) -> ParticipantView:
    participant = snapshot.participant(duchy_id)
    if participant is None:
        raise not_found(f"duchy {duchy_id} is not a participant of this computation")
    return ParticipantView(participant, snapshot)


async def _load(
    tx: WriteTx, computation_id: int, duchy_id: str
) -> tuple[MeasurementRecord, ParticipantView]:
    measurement = await reads.measurement_by_computation(tx.connection, computation_id)
    if measurement is None:
        raise not_found("computation not found")
    return measurement, participant_view(await reads.snapshot(tx.connection, measurement), duchy_id)


async def _reload(tx: WriteTx, measurement: MeasurementRecord, duchy_id: str) -> ParticipantView:
    updated = await reads.measurement(tx.connection, measurement.measurement_id)
    assert updated is not None
    return participant_view(await reads.snapshot(tx.connection, updated), duchy_id)


def all_others_in(snapshot: MeasurementSnapshot, duchy_id: str, state: ParticipantState) -> bool:
    return all(
        p.participant_state is state for p in snapshot.participants if p.duchy_id != duchy_id
    )


async def _update(tx: WriteTx, participant: ParticipantRecord, **values: object) -> None:
    await tx.connection.execute(
        update(computation_participants)
        .where(
            computation_participants.c.measurement_id == participant.measurement_id,
            computation_participants.c.duchy_id == participant.duchy_id,
        )
        .values(update_time_us=tx.now_us, **values)
    )
