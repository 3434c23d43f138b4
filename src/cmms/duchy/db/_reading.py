"""Reading computation tokens and histories inside an open connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cmms.duchy.db.records import (
    AttemptEndReason,
    BlobDependency,
    BlobRef,
    ComputationToken,
    RequisitionKey,
    RequisitionRecord,
    StageAttempt,
    StageRecord,
)
from cmms.duchy.db.schema import (
    computation_blob_references as blobs_t,
)
from cmms.duchy.db.schema import (
    computation_stage_attempts as attempts_t,
)
from cmms.duchy.db.schema import (
    computation_stages as stages_t,
)
from cmms.duchy.db.schema import (
    computations as computations_t,
)
from cmms.duchy.db.schema import (
    requisitions as requisitions_t,
)

_CURRENT_STAGE = computations_t.join(
    stages_t,
    and_(
        stages_t.c.computation_id == computations_t.c.computation_id,
        stages_t.c.computation_stage == computations_t.c.computation_stage,
    ),
)


async def read_token(
    connection: AsyncConnection, condition: ColumnElement[bool]
) -> ComputationToken | None:
    """The token of the computation matching `condition` (on `computations`), if any."""
    query = (
        select(
            computations_t,
            stages_t.c.next_attempt,
            stages_t.c.details.label("stage_details"),
        )
        .select_from(_CURRENT_STAGE)
        .where(condition)
    )
    row = (await connection.execute(query)).mappings().one_or_none()
    if row is None:
        return None
    local_id = row["computation_id"]
    blob_rows = await connection.execute(
        select(blobs_t.c.blob_id, blobs_t.c.dependency_type, blobs_t.c.path_to_blob)
        .where(
            blobs_t.c.computation_id == local_id,
            blobs_t.c.computation_stage == row["computation_stage"],
        )
        .order_by(blobs_t.c.blob_id)
    )
    requisition_rows = await connection.execute(
        select(
            requisitions_t.c.requisition_id,
            requisitions_t.c.external_requisition_id,
            requisitions_t.c.requisition_fingerprint,
            requisitions_t.c.requisition_details,
            requisitions_t.c.path_to_blob,
        )
        .where(requisitions_t.c.computation_id == local_id)
        .order_by(requisitions_t.c.requisition_id)
    )
    return _token(
        row,
        tuple(
            BlobRef(b.blob_id, BlobDependency(b.dependency_type), b.path_to_blob) for b in blob_rows
        ),
        tuple(
            RequisitionRecord(
                requisition_id=r.requisition_id,
                key=RequisitionKey(r.external_requisition_id, bytes(r.requisition_fingerprint)),
                details=bytes(r.requisition_details),
                path=r.path_to_blob,
            )
            for r in requisition_rows
        ),
    )


def _token(
    row: Any, blobs: tuple[BlobRef, ...], requisitions: tuple[RequisitionRecord, ...]
) -> ComputationToken:
    return ComputationToken(
        local_computation_id=row["computation_id"],
        global_computation_id=row["global_computation_id"],
        protocol=row["protocol"],
        stage=row["computation_stage"],
        attempt=row["next_attempt"] - 1,
        version=row["version"],
        computation_details=bytes(row["computation_details"]),
        stage_details=bytes(row["stage_details"]),
        lock_owner=row["lock_owner"],
        lock_expiration_time=row["lock_expiration_time"],
        creation_time=row["creation_time"],
        update_time=row["update_time"],
        blobs=blobs,
        requisitions=requisitions,
    )


async def read_attempts(connection: AsyncConnection, local_id: int) -> list[StageAttempt]:
    rows = await connection.execute(
        select(attempts_t)
        .where(attempts_t.c.computation_id == local_id)
        .order_by(attempts_t.c.begin_time, attempts_t.c.computation_stage, attempts_t.c.attempt)
    )
    return [
        StageAttempt(
            stage=r.computation_stage,
            attempt=r.attempt,
            begin_time=r.begin_time,
            end_time=r.end_time,
            reason_ended=None if r.reason_ended is None else AttemptEndReason(r.reason_ended),
        )
        for r in rows
    ]


async def read_stages(connection: AsyncConnection, local_id: int) -> list[StageRecord]:
    rows = await connection.execute(
        select(stages_t)
        .where(stages_t.c.computation_id == local_id)
        .order_by(stages_t.c.creation_time, stages_t.c.computation_stage)
    )
    records = {
        r.computation_stage: StageRecord(
            stage=r.computation_stage,
            creation_time=r.creation_time,
            end_time=r.end_time,
            previous_stage=r.previous_stage,
            following_stage=r.following_stage,
            next_attempt=r.next_attempt,
        )
        for r in rows
    }
    # Follow the history links: several stages can share a creation time.
    ordered: list[StageRecord] = []
    current = next((r for r in records.values() if r.previous_stage is None), None)
    while current is not None and current not in ordered:
        ordered.append(current)
        following = current.following_stage
        current = None if following is None else records.get(following)
    ordered.extend(r for r in records.values() if r not in ordered)
    return ordered
