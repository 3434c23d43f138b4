"""Requisitions: the EDP's list/get/refuse/direct fulfilment, and the duchies' fulfilment.

The last fulfilment advances the measurement in the same transaction (§1.13).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cmms.kingdom.db import reads
from cmms.kingdom.db.records import (
    FailureReason,
    MeasurementRecord,
    MeasurementSnapshot,
    MeasurementState,
    Protocol,
    RequisitionRecord,
    RequisitionState,
)
from cmms.kingdom.db.schema import requisitions
from cmms.kingdom.db.store import KingdomStore, WriteTx
from cmms.kingdom.db.transitions import check_etag, end_measurement, set_measurement_state
from cmms.kingdom.errors import failed_precondition, not_found, permission_denied
from cmms.kingdom.ids import encode_external_id

VISIBLE_STATES = frozenset(RequisitionState) - {RequisitionState.PENDING_PARAMS}


def nonce_hash(nonce: int) -> bytes:
    """SHA-256 of the nonce's 64 bits as 8 big-endian bytes."""
    return hashlib.sha256((nonce % 2**64).to_bytes(8, "big")).digest()


@dataclass(frozen=True)
class RequisitionView:
    """A requisition with its measurement as read in the same transaction."""

    requisition: RequisitionRecord
    snapshot: MeasurementSnapshot


@dataclass(frozen=True)
class Fulfilment:
    nonce: int
    fulfillment_context: bytes
    etag: str = ""


class RequisitionRepository:
    def __init__(self, store: KingdomStore) -> None:
        self._store = store

    async def list_for_data_provider(
        self,
        dp_id: str,
        states: Collection[RequisitionState] = (),
        measurement_states: Collection[MeasurementState] = (),
        *,
        page_size: int = 10,
        after_requisition_id: int = 0,
    ) -> tuple[list[RequisitionView], int | None]:
        """Visible requisitions of one EDP by id; returns the page and the last id if more follow."""
        wanted = [s.value for s in (set(states) & VISIBLE_STATES if states else VISIBLE_STATES)]
        query = (
            select(requisitions)
            .where(
                requisitions.c.data_provider_id == dp_id,
                requisitions.c.state.in_(wanted),
                requisitions.c.requisition_id > after_requisition_id,
            )
            .order_by(requisitions.c.requisition_id)
        )
        views: list[RequisitionView] = []
        more = False
        async with self._store.read() as connection:
            for row in await connection.execute(query):
                record = RequisitionRecord.of(row)
                measurement = await reads.measurement(connection, record.measurement_id)
                assert measurement is not None
                if measurement_states and measurement.measurement_state not in measurement_states:
                    continue
                if len(views) == page_size:
                    more = True
                    break
                views.append(RequisitionView(record, await reads.snapshot(connection, measurement)))
        last = views[-1].requisition.requisition_id if more and views else None
        return views, last

    async def list_for_measurement(self, mc_id: str, measurement_id: int) -> list[RequisitionView]:
        async with self._store.read() as connection:
            measurement = await reads.measurement(connection, measurement_id)
            if measurement is None or measurement.measurement_consumer_id != mc_id:
                raise not_found("measurement not found")
            snapshot = await reads.snapshot(connection, measurement)
        return [
            RequisitionView(r, snapshot)
            for r in snapshot.requisitions
            if r.requisition_state in VISIBLE_STATES
        ]

    async def get(self, dp_id: str, requisition_id: int) -> RequisitionView:
        async with self._store.read() as connection:
            return await _visible(connection, dp_id, requisition_id)

    async def refuse(
        self, dp_id: str, requisition_id: int, justification: str, message: str, given_etag: str
    ) -> RequisitionView:
        """UNFULFILLED -> REFUSED; the measurement fails and the others are withdrawn."""
        async with self._store.write() as tx:
            view = await _visible(tx.connection, dp_id, requisition_id)
            record, measurement = view.requisition, view.snapshot.measurement
            check_etag(given_etag, record.update_time_us)
            require_open(record, measurement)
            await _update(
                tx,
                record,
                state=RequisitionState.REFUSED.value,
                refusal_justification=justification,
                refusal_message=message,
            )
            await end_measurement(
                tx,
                measurement,
                MeasurementState.FAILED,
                FailureReason.REQUISITION_REFUSED,
                f"requisition {encode_external_id(requisition_id)} was refused "
                f"({justification}): {message}",
            )
            return await _view(tx, requisition_id)

    async def fulfill_direct(
        self,
        dp_id: str,
        requisition_id: int,
        fulfilment: Fulfilment,
        encrypted_result: bytes,
        result_certificate_id: int | None,
    ) -> RequisitionView:
        """Direct protocol: store the EDP's own result; the last one -> SUCCEEDED."""
        async with self._store.write() as tx:
            view = await _visible(tx.connection, dp_id, requisition_id)
            record, measurement = view.requisition, view.snapshot.measurement
            if measurement.protocol_kind is not Protocol.DIRECT:
                raise failed_precondition("the measurement is computed by duchies, not directly")
            if (
                record.requisition_state is RequisitionState.FULFILLED
                and record.nonce_value == fulfilment.nonce
                and record.direct_encrypted_result == encrypted_result
            ):
                return view
            check_etag(fulfilment.etag, record.update_time_us)
            require_open(record, measurement)
            require_nonce(record, fulfilment.nonce)
            if result_certificate_id is not None:
                certificate = await reads.certificate(tx.connection, result_certificate_id)
                if certificate is None or certificate.owner_id != dp_id:
                    raise not_found("certificate not found")
            await _update(
                tx,
                record,
                state=RequisitionState.FULFILLED.value,
                nonce=(fulfilment.nonce % 2**64).to_bytes(8, "big"),
                fulfillment_context=fulfilment.fulfillment_context,
                direct_encrypted_result=encrypted_result,
                direct_result_certificate_id=result_certificate_id
                or record.data_provider_certificate_id,
            )
            if await _all_fulfilled(tx, measurement):
                await set_measurement_state(tx, measurement, MeasurementState.SUCCEEDED)
            return await _view(tx, requisition_id)

    async def fulfill_for_computation(
        self, duchy_id: str, computation_id: int, requisition_id: int, fulfilment: Fulfilment
    ) -> RequisitionView:
        """A duchy reports the EDP's data as received (§2.5); once only, exact retry allowed."""
        async with self._store.write() as tx:
            measurement = await reads.measurement_by_computation(tx.connection, computation_id)
            record = await reads.requisition(tx.connection, requisition_id)
            if (
                measurement is None
                or record is None
                or record.measurement_id != measurement.measurement_id
            ):
                raise not_found("requisition not found under this computation")
            if (
                record.requisition_state is RequisitionState.FULFILLED
                and record.fulfilling_duchy_id == duchy_id
                and record.nonce_value == fulfilment.nonce % 2**64
            ):
                return await _view(tx, requisition_id)
            check_etag(fulfilment.etag, record.update_time_us)
            require_open(record, measurement)
            snapshot = await reads.snapshot(tx.connection, measurement)
            if snapshot.participant(duchy_id) is None:
                raise permission_denied(f"duchy {duchy_id} does not take part in this computation")
            if (
                measurement.protocol_kind.preassigns_fulfilling_duchy
                and record.fulfilling_duchy_id != duchy_id
            ):
                raise permission_denied(
                    f"requisition is assigned to duchy {record.fulfilling_duchy_id}, not {duchy_id}"
                )
            require_nonce(record, fulfilment.nonce)
            await _update(
                tx,
                record,
                state=RequisitionState.FULFILLED.value,
                nonce=(fulfilment.nonce % 2**64).to_bytes(8, "big"),
                fulfillment_context=fulfilment.fulfillment_context,
                fulfilling_duchy_id=duchy_id,
            )
            if await _all_fulfilled(tx, measurement):
                following = (
                    MeasurementState.PENDING_PARTICIPANT_CONFIRMATION
                    if measurement.protocol_kind.has_confirmation_step
                    else MeasurementState.PENDING_COMPUTATION
                )
                await set_measurement_state(tx, measurement, following)
            return await _view(tx, requisition_id)


async def _visible(connection: AsyncConnection, dp_id: str, requisition_id: int) -> RequisitionView:
    record = await reads.requisition(connection, requisition_id)
    # PENDING_PARAMS requisitions stay hidden: their name is not yet known to the EDP.
    if (
        record is None
        or record.data_provider_id != dp_id
        or record.requisition_state is RequisitionState.PENDING_PARAMS
    ):
        raise not_found("requisition not found")
    measurement = await reads.measurement(connection, record.measurement_id)
    assert measurement is not None
    return RequisitionView(record, await reads.snapshot(connection, measurement))


async def _view(tx: WriteTx, requisition_id: int) -> RequisitionView:
    record = await reads.requisition(tx.connection, requisition_id)
    assert record is not None
    measurement = await reads.measurement(tx.connection, record.measurement_id)
    assert measurement is not None
    return RequisitionView(record, await reads.snapshot(tx.connection, measurement))


def require_open(record: RequisitionRecord, measurement: MeasurementRecord) -> None:
    if record.requisition_state is not RequisitionState.UNFULFILLED:
        raise failed_precondition(f"requisition is {record.state}, not UNFULFILLED")
    if measurement.measurement_state is not MeasurementState.PENDING_REQUISITION_FULFILLMENT:
        raise failed_precondition(
            f"measurement is {measurement.state}, not PENDING_REQUISITION_FULFILLMENT"
        )


def require_nonce(record: RequisitionRecord, nonce: int) -> None:
    if nonce_hash(nonce) != record.nonce_hash:
        raise failed_precondition("the nonce does not match the requisition's nonce hash")


async def _update(tx: WriteTx, record: RequisitionRecord, **values: object) -> None:
    await tx.connection.execute(
        update(requisitions)
        .where(requisitions.c.requisition_id == record.requisition_id)
        .values(update_time_us=tx.now_us, **values)
    )


async def _all_fulfilled(tx: WriteTx, measurement: MeasurementRecord) -> bool:
    rows = await tx.connection.execute(
        select(requisitions.c.state).where(
            requisitions.c.measurement_id == measurement.measurement_id
        )
    )
    return all(state == RequisitionState.FULFILLED.value for (state,) in rows)
