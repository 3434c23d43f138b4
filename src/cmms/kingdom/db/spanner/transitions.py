"""Measurement state changes and the Kingdom's log entries, as Spanner mutations.

The same rules as `cmms.kingdom.db.transitions`. One difference of means: a mutation is invisible
to the rest of its transaction, so a writer that already changed a requisition in this transaction
tells `end_measurement` (via `settled`) instead of relying on a re-read.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from cmms.kingdom.db.records import (
    OPEN_REQUISITION_STATES,
    FailureReason,
    MeasurementRecord,
    MeasurementState,
    RequisitionState,
)
from cmms.kingdom.db.spanner.rows import insert, scalars, update
from cmms.kingdom.db.spanner.store import SpannerWriteTx

_OPEN = sorted(s.value for s in OPEN_REQUISITION_STATES)


def set_measurement_state(
    tx: SpannerWriteTx, record: MeasurementRecord, state: MeasurementState, **values: Any
) -> None:
    """Move `record` to `state` (stamping the transaction time), with extra column `values`."""
    update(
        tx,
        "measurements",
        measurement_id=record.measurement_id,
        state=state.value,
        update_time_us=tx.now_us,
        **values,
    )
    write_log(tx, record.measurement_id, f"measurement state {record.state} -> {state.value}")


def end_measurement(
    tx: SpannerWriteTx,
    record: MeasurementRecord,
    state: MeasurementState,
    reason: FailureReason | None = None,
    message: str | None = None,
    *,
    settled: Collection[int] = (),
) -> None:
    """FAILED or CANCELLED: set the state (and failure) and withdraw every open requisition.

    `settled`: requisitions this transaction already moved out of an open state.
    """
    values: dict[str, Any] = {}
    if reason is not None:
        values = {"failure_reason": reason.value, "failure_message": message or ""}
    set_measurement_state(tx, record, state, **values)
    open_ids = scalars(
        tx.transaction,
        "SELECT requisition_id FROM requisitions"
        " WHERE measurement_id = @id AND state IN UNNEST(@open)",
        id=record.measurement_id,
        open=_OPEN,
    )
    for requisition_id in open_ids:
        if requisition_id in settled:
            continue
        update(
            tx,
            "requisitions",
            measurement_id=record.measurement_id,
            requisition_id=requisition_id,
            state=RequisitionState.WITHDRAWN.value,
            update_time_us=tx.now_us,
        )


def write_log(
    tx: SpannerWriteTx,
    measurement_id: int,
    message: str,
    *,
    duchy_id: str | None = None,
    child_reference_id: str | None = None,
    stage_attempt: bytes | None = None,
    error_type: str | None = None,
    error_time_us: int | None = None,
) -> int:
    """Store a log entry (the Kingdom's when `duchy_id` is None); returns its id."""
    entry_id = tx.new_id()
    insert(
        tx,
        "log_entries",
        measurement_id=measurement_id,
        log_entry_id=entry_id,
        duchy_id=duchy_id,
        message=message,
        participant_child_reference_id=child_reference_id,
        stage_attempt=stage_attempt,
        error_type=error_type,
        error_time_us=error_time_us,
        create_time_us=tx.now_us,
    )
    return entry_id
