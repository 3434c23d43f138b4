"""Requisitions on Spanner: the EDP's list/get/refuse/direct fulfilment and the duchies' fulfilment.

The rules of `cmms.kingdom.db.requisitions`. The last fulfilment advances the measurement in the
same transaction (§1.13); as the fulfilment's own mutation is not visible to that transaction,
"every requisition is now fulfilled" is decided from the others' states as read.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from cmms.common.spanner.params import query_params
from cmms.kingdom.db.records import (
    FailureReason,
    MeasurementRecord,
    MeasurementSnapshot,
    MeasurementState,
    Protocol,
    RequisitionRecord,
    RequisitionState,
)
from cmms.kingdom.db.requisitions import (
    VISIBLE_STATES,
    Fulfilment,
    RequisitionView,
    require_nonce,
    require_open,
)
from cmms.kingdom.db.spanner import reads
from cmms.kingdom.db.spanner.rows import Row, column_list, row_of, select_rows, update
from cmms.kingdom.db.spanner.store import SpannerKingdomStore, SpannerWriteTx
from cmms.kingdom.db.spanner.transitions import end_measurement, set_measurement_state
from cmms.kingdom.db.transitions import check_etag
from cmms.kingdom.errors import failed_precondition, not_found, permission_denied
from cmms.kingdom.ids import encode_external_id


class SpannerRequisitionRepository:
    def __init__(self, store: SpannerKingdomStore) -> None:
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
        wanted = sorted(
            s.value for s in (set(states) & VISIBLE_STATES if states else VISIBLE_STATES)
        )
        sql = (
            f"SELECT {column_list('requisitions', 'r')} FROM requisitions AS r"
            " JOIN measurements AS m ON m.measurement_id = r.measurement_id"
            " WHERE r.data_provider_id = @dp AND r.state IN UNNEST(@states)"
            " AND r.requisition_id > @after"
        )
        params: dict[str, Any] = {"dp": dp_id, "states": wanted, "after": after_requisition_id}
        if measurement_states:
            sql += " AND m.state IN UNNEST(@measurement_states)"
            params["measurement_states"] = sorted(s.value for s in measurement_states)
        sql += f" ORDER BY r.requisition_id LIMIT {int(page_size) + 1}"

        def query(snapshot: Any) -> tuple[list[RequisitionView], bool]:
            rows = [
                RequisitionRecord.from_mapping(row_of("requisitions", values))
                for values in snapshot.execute_sql(sql, **query_params(**params))
            ]
            page = rows[:page_size]
            measurements = {
                m.measurement_id: m
                for m in map(MeasurementRecord.from_mapping, _measurements(snapshot, page))
            }
            by_id = {
                s.measurement.measurement_id: s
                for s in reads.snapshots(snapshot, list(measurements.values()))
            }
            return [RequisitionView(r, by_id[r.measurement_id]) for r in page], len(
                rows
            ) > page_size

        views, more = await self._store.read(query)
        last = views[-1].requisition.requisition_id if more and views else None
        return views, last

    async def list_for_measurement(self, mc_id: str, measurement_id: int) -> list[RequisitionView]:
        def query(snapshot: Any) -> MeasurementSnapshot:
            measurement = reads.measurement(snapshot, measurement_id)
            if measurement is None or measurement.measurement_consumer_id != mc_id:
                raise not_found("measurement not found")
            return reads.snapshot(snapshot, measurement)

        snapshot = await self._store.read(query)
        return [
            RequisitionView(r, snapshot)
            for r in snapshot.requisitions
            if r.requisition_state in VISIBLE_STATES
        ]

    async def get(self, dp_id: str, requisition_id: int) -> RequisitionView:
        return await self._store.read(lambda s: _visible(s, dp_id, requisition_id))

    async def refuse(
        self, dp_id: str, requisition_id: int, justification: str, message: str, given_etag: str
    ) -> RequisitionView:
        """UNFULFILLED -> REFUSED; the measurement fails and the others are withdrawn."""

        def work(tx: SpannerWriteTx) -> int:
            view = _visible(tx.transaction, dp_id, requisition_id)
            record, measurement = view.requisition, view.snapshot.measurement
            check_etag(given_etag, record.update_time_us)
            require_open(record, measurement)
            _update(
                tx,
                record,
                state=RequisitionState.REFUSED.value,
                refusal_justification=justification,
                refusal_message=message,
            )
            end_measurement(
                tx,
                measurement,
                MeasurementState.FAILED,
                FailureReason.REQUISITION_REFUSED,
                f"requisition {encode_external_id(requisition_id)} was refused "
                f"({justification}): {message}",
                settled=[requisition_id],
            )
            return requisition_id

        return await self._store.write_then_read(work, _view)

    async def fulfill_direct(
        self,
        dp_id: str,
        requisition_id: int,
        fulfilment: Fulfilment,
        encrypted_result: bytes,
        result_certificate_id: int | None,
    ) -> RequisitionView:
        """Direct protocol: store the EDP's own result; the last one -> SUCCEEDED."""

        def work(tx: SpannerWriteTx) -> int:
            view = _visible(tx.transaction, dp_id, requisition_id)
            record, measurement = view.requisition, view.snapshot.measurement
            if measurement.protocol_kind is not Protocol.DIRECT:
                raise failed_precondition("the measurement is computed by duchies, not directly")
            if (
                record.requisition_state is RequisitionState.FULFILLED
                and record.nonce_value == fulfilment.nonce
                and record.direct_encrypted_result == encrypted_result
            ):
                return requisition_id
            check_etag(fulfilment.etag, record.update_time_us)
            require_open(record, measurement)
            require_nonce(record, fulfilment.nonce)
            if result_certificate_id is not None:
                certificate = reads.certificate(tx.transaction, result_certificate_id)
                if certificate is None or certificate.owner_id != dp_id:
                    raise not_found("certificate not found")
            _update(
                tx,
                record,
                state=RequisitionState.FULFILLED.value,
                nonce=(fulfilment.nonce % 2**64).to_bytes(8, "big"),
                fulfillment_context=fulfilment.fulfillment_context,
                direct_encrypted_result=encrypted_result,
                direct_result_certificate_id=result_certificate_id
                or record.data_provider_certificate_id,
            )
            if _others_fulfilled(view.snapshot, requisition_id):
                set_measurement_state(tx, measurement, MeasurementState.SUCCEEDED)
            return requisition_id

        return await self._store.write_then_read(work, _view)

    async def fulfill_for_computation(
        self, duchy_id: str, computation_id: int, requisition_id: int, fulfilment: Fulfilment
    ) -> RequisitionView:
        """A duchy reports the EDP's data as received (§2.5); once only, exact retry allowed."""

        def work(tx: SpannerWriteTx) -> int:
            measurement = reads.measurement_by_computation(tx.transaction, computation_id)
            record = reads.requisition(tx.transaction, requisition_id)
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
                return requisition_id
            check_etag(fulfilment.etag, record.update_time_us)
            require_open(record, measurement)
            snapshot = reads.snapshot(tx.transaction, measurement)
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
            _update(
                tx,
                record,
                state=RequisitionState.FULFILLED.value,
                nonce=(fulfilment.nonce % 2**64).to_bytes(8, "big"),
                fulfillment_context=fulfilment.fulfillment_context,
                fulfilling_duchy_id=duchy_id,
            )
            if _others_fulfilled(snapshot, requisition_id):
                following = (
                    MeasurementState.PENDING_PARTICIPANT_CONFIRMATION
                    if measurement.protocol_kind.has_confirmation_step
                    else MeasurementState.PENDING_COMPUTATION
                )
                set_measurement_state(tx, measurement, following)
            return requisition_id

        return await self._store.write_then_read(work, _view)


def _visible(reader: Any, dp_id: str, requisition_id: int) -> RequisitionView:
    record = reads.requisition(reader, requisition_id)
    # PENDING_PARAMS requisitions stay hidden: their name is not yet known to the EDP.
    if (
        record is None
        or record.data_provider_id != dp_id
        or record.requisition_state is RequisitionState.PENDING_PARAMS
    ):
        raise not_found("requisition not found")
    return RequisitionView(record, reads.snapshot_of(reader, record.measurement_id))


def _measurements(reader: Any, requisitions: list[RequisitionRecord]) -> list[Row]:
    ids = sorted({r.measurement_id for r in requisitions})
    if not ids:
        return []
    return select_rows(reader, "measurements", "measurement_id IN UNNEST(@ids)", ids=ids)


def _view(reader: Any, requisition_id: int) -> RequisitionView:
    record = reads.requisition(reader, requisition_id)
    assert record is not None, requisition_id
    return RequisitionView(record, reads.snapshot_of(reader, record.measurement_id))


def _others_fulfilled(snapshot: MeasurementSnapshot, requisition_id: int) -> bool:
    """Whether every requisition but `requisition_id` was fulfilled when `snapshot` was read."""
    return all(
        r.requisition_state is RequisitionState.FULFILLED
        for r in snapshot.requisitions
        if r.requisition_id != requisition_id
    )


def _update(tx: SpannerWriteTx, record: RequisitionRecord, **values: object) -> None:
    update(
        tx,
        "requisitions",
        measurement_id=record.measurement_id,
        requisition_id=record.requisition_id,
        update_time_us=tx.now_us,
        **values,
    )
