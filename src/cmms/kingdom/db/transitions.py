"""Measurement state changes shared by every writer, and the Kingdom's own log entries.

A measurement's update time changes only when its state changes (or its result is set): that is
what makes the duchies' stream emit once per state change.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from cmms.kingdom.db.records import (
    OPEN_REQUISITION_STATES,
    FailureReason,
    MeasurementRecord,
    MeasurementState,
    RequisitionState,
)
from cmms.kingdom.db.schema import log_entries, measurements, requisitions
from cmms.kingdom.db.store import WriteTx
from cmms.kingdom.errors import aborted
from cmms.kingdom.timestamps import etag


def check_etag(given: str, update_time_us: int) -> None:
    """ABORTED if a non-empty etag does not match (an empty one skips the check)."""
    if given and given != etag(update_time_us):
        raise aborted("etag mismatch: the resource changed; read it again")


async def set_measurement_state(
    tx: WriteTx, record: MeasurementRecord, state: MeasurementState, **values: Any
) -> None:
    """Move `record` to `state` (stamping the transaction time), with extra column `values`."""
    await tx.connection.execute(
        update(measurements)
        .where(measurements.c.measurement_id == record.measurement_id)
        .values(state=state.value, update_time_us=tx.now_us, **values)
    )
    await write_log(tx, record.measurement_id, f"measurement state {record.state} -> {state.value}")


async def end_measurement(
    tx: WriteTx,
    record: MeasurementRecord,
    state: MeasurementState,
    reason: FailureReason | None = None,
    message: str | None = None,
) -> None:
    """FAILED or CANCELLED: set the state (and failure) and withdraw every open requisition."""
    values: dict[str, Any] = {}
    if reason is not None:
        values = {"failure_reason": reason.value, "failure_message": message or ""}
    await set_measurement_state(tx, record, state, **values)
    await tx.connection.execute(
        update(requisitions)
        .where(
            requisitions.c.measurement_id == record.measurement_id,
            requisitions.c.state.in_([s.value for s in OPEN_REQUISITION_STATES]),
        )
        .values(state=RequisitionState.WITHDRAWN.value, update_time_us=tx.now_us)
    )


async def write_log(
    tx: WriteTx,
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
    await tx.connection.execute(
        log_entries.insert().values(
            log_entry_id=entry_id,
            measurement_id=measurement_id,
            duchy_id=duchy_id,
            message=message,
            participant_child_reference_id=child_reference_id,
            stage_attempt=stage_attempt,
            error_type=error_type,
            error_time_us=error_time_us,
            create_time_us=tx.now_us,
        )
    )
    return entry_id
