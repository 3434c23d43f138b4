"""Reading and writing one computation's rows inside a Spanner read-write transaction.

Reads lock what they read until the transaction ends; writes are buffered mutations, applied at
commit and invisible to the transaction's own later reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.cloud import spanner

from cmms.common.spanner.params import query_params
from cmms.duchy.db.computations import next_version
from cmms.duchy.db.errors import (
    ComputationNotFoundError,
    OutputsNotWrittenError,
    StaleVersionError,
)
from cmms.duchy.db.records import (
    AttemptEndReason,
    BlobDependency,
    DeletedComputation,
    RequisitionKey,
)
from cmms.duchy.db.spanner.schema import REQUISITION_KEY_INDEX

_key_set: Any = spanner.KeySet


@dataclass(frozen=True)
class ComputationRow:
    """The columns of a computation row that mutations check."""

    computation_id: int
    protocol: int
    stage: int
    version: int
    lock_owner: str | None


def exists(transaction: Any, sql: str, **params: Any) -> bool:
    return bool(list(transaction.execute_sql(sql, **query_params(**params))))


def requisition_owner(transaction: Any, key: RequisitionKey) -> int | None:
    rows = list(
        transaction.execute_sql(
            f"SELECT ComputationId FROM Requisitions@{{FORCE_INDEX={REQUISITION_KEY_INDEX}}}"
            " WHERE ExternalRequisitionId = @external_id AND RequisitionFingerprint = @fingerprint",
            **query_params(
                external_id=key.external_requisition_id, fingerprint=key.requisition_fingerprint
            ),
        )
    )
    return int(rows[0][0]) if rows else None


def requisition_id(transaction: Any, local_id: int, key: RequisitionKey) -> int | None:
    rows = list(
        transaction.execute_sql(
            "SELECT RequisitionId FROM Requisitions WHERE ComputationId = @id"
            " AND ExternalRequisitionId = @external_id AND RequisitionFingerprint = @fingerprint",
            **query_params(
                id=local_id,
                external_id=key.external_requisition_id,
                fingerprint=key.requisition_fingerprint,
            ),
        )
    )
    return int(rows[0][0]) if rows else None


def lock(transaction: Any, local_id: int, expected_version: int | None) -> ComputationRow:
    """The computation row, read (so locked) in this transaction, after the version check."""
    rows = list(
        transaction.execute_sql(
            "SELECT ComputationId, Protocol, ComputationStage, Version, LockOwner"
            " FROM Computations WHERE ComputationId = @id",
            **query_params(id=local_id),
        )
    )
    if not rows:
        raise ComputationNotFoundError(f"computation {local_id} not found")
    row = ComputationRow(*rows[0])
    if expected_version is not None and row.version != expected_version:
        raise StaleVersionError(local_id, row.version, expected_version)
    return row


def touch(transaction: Any, row: ComputationRow, now: datetime, **values: Any) -> None:
    """Update the computation row: a new version, the update and commit times, and `values`."""
    columns = ["ComputationId", "Version", "UpdateTime", "CommitTime", *values]
    transaction.update(
        "Computations",
        columns=columns,
        values=[
            [
                row.computation_id,
                next_version(row.version, now),
                now,
                spanner.COMMIT_TIMESTAMP,
                *values.values(),
            ]
        ],
    )


def require_outputs_written(transaction: Any, local_id: int, stage: int) -> None:
    missing = [
        int(blob_id)
        for (blob_id,) in transaction.execute_sql(
            "SELECT BlobId FROM ComputationBlobReferences"
            " WHERE ComputationId = @id AND ComputationStage = @stage"
            " AND DependencyType = @output AND (PathToBlob IS NULL OR PathToBlob = '')"
            " ORDER BY BlobId",
            **query_params(id=local_id, stage=stage, output=int(BlobDependency.OUTPUT)),
        )
    ]
    if missing:
        raise OutputsNotWrittenError(
            f"computation {local_id}: output blobs {missing} have no path yet"
        )


def end_attempts(
    transaction: Any,
    local_id: int,
    now: datetime,
    reason_for: Callable[[int, int], AttemptEndReason | None],
) -> None:
    """End each unfinished attempt for which `reason_for(stage, attempt)` names a reason.

    One read decides every attempt: the transaction's own buffered writes are invisible to its
    reads, so ending attempts in several passes could not see the earlier passes.
    """
    open_attempts = list(
        transaction.execute_sql(
            "SELECT ComputationStage, Attempt FROM ComputationStageAttempts"
            " WHERE ComputationId = @id AND EndTime IS NULL",
            **query_params(id=local_id),
        )
    )
    ended = []
    for stage, attempt in open_attempts:
        reason = reason_for(stage, attempt)
        if reason is not None:
            ended.append((local_id, stage, attempt, now, int(reason)))
    if ended:
        transaction.update(
            "ComputationStageAttempts",
            columns=("ComputationId", "ComputationStage", "Attempt", "EndTime", "ReasonEnded"),
            values=ended,
        )


def blob_paths(transaction: Any, local_id: int) -> DeletedComputation:
    global_ids = [
        row[0]
        for row in transaction.execute_sql(
            "SELECT GlobalComputationId FROM Computations WHERE ComputationId = @id",
            **query_params(id=local_id),
        )
    ]
    blob_paths = [
        row[0]
        for row in transaction.execute_sql(
            "SELECT PathToBlob FROM ComputationBlobReferences"
            " WHERE ComputationId = @id AND PathToBlob IS NOT NULL"
            " ORDER BY ComputationStage, BlobId",
            **query_params(id=local_id),
        )
    ]
    requisition_paths = [
        row[0]
        for row in transaction.execute_sql(
            "SELECT PathToBlob FROM Requisitions"
            " WHERE ComputationId = @id AND PathToBlob IS NOT NULL ORDER BY RequisitionId",
            **query_params(id=local_id),
        )
    ]
    return DeletedComputation(
        local_computation_id=local_id,
        global_computation_id=global_ids[0] if global_ids else None,
        # A blob can be an output of one stage and an input of the next: report it once.
        computation_blob_paths=tuple(dict.fromkeys(p for p in blob_paths if p)),
        requisition_blob_paths=tuple(p for p in requisition_paths if p),
    )


def delete(transaction: Any, local_id: int) -> DeletedComputation:
    found = blob_paths(transaction, local_id)
    if found.existed:
        # Interleaved children go with their parent (ON DELETE CASCADE).
        transaction.delete("Computations", _key_set(keys=[[local_id]]))
    return found
