"""Reading tokens and histories from a Spanner snapshot or read-write transaction.

A token is one query: the computation row joined with its current stage, and the stage's blobs
and the computation's requisitions as ARRAY subqueries, so a single-use snapshot (one consistent
read timestamp) is enough.
"""

from __future__ import annotations

from typing import Any

from cmms.common.spanner.params import query_params
from cmms.common.spanner.values import bytes_out, optional_time_out, time_out
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
from cmms.duchy.db.spanner.schema import GLOBAL_ID_INDEX, REQUISITION_KEY_INDEX

_TOKEN_QUERY = """
SELECT c.ComputationId, c.GlobalComputationId, c.Protocol, c.ComputationStage, c.Version,
       c.ComputationDetails, c.LockOwner, c.LockExpirationTime, c.CreationTime, c.UpdateTime,
       s.NextAttempt, s.Details,
       ARRAY(SELECT AS STRUCT b.BlobId, b.DependencyType, b.PathToBlob
             FROM ComputationBlobReferences AS b
             WHERE b.ComputationId = c.ComputationId AND b.ComputationStage = c.ComputationStage
             ORDER BY b.BlobId) AS Blobs,
       ARRAY(SELECT AS STRUCT r.RequisitionId, r.ExternalRequisitionId, r.RequisitionFingerprint,
                              r.RequisitionDetails, r.PathToBlob
             FROM Requisitions AS r
             WHERE r.ComputationId = c.ComputationId
             ORDER BY r.RequisitionId) AS Requisitions
FROM {table} AS c
JOIN ComputationStages AS s
  ON s.ComputationId = c.ComputationId AND s.ComputationStage = c.ComputationStage
WHERE {condition}
"""


def token_by_local_id(reader: Any, local_id: int) -> ComputationToken | None:
    return _one_token(reader, "Computations", "c.ComputationId = @id", id=local_id)


def token_by_global_id(reader: Any, global_id: str) -> ComputationToken | None:
    return _one_token(
        reader,
        f"Computations@{{FORCE_INDEX={GLOBAL_ID_INDEX}}}",
        "c.GlobalComputationId = @global_id",
        global_id=global_id,
    )


def token_by_requisition_key(reader: Any, key: RequisitionKey) -> ComputationToken | None:
    return _one_token(
        reader,
        "Computations",
        f"""c.ComputationId = (
              SELECT r.ComputationId FROM Requisitions@{{FORCE_INDEX={REQUISITION_KEY_INDEX}}} AS r
              WHERE r.ExternalRequisitionId = @external_id AND r.RequisitionFingerprint = @fingerprint
            )""",
        external_id=key.external_requisition_id,
        fingerprint=key.requisition_fingerprint,
    )


def _one_token(reader: Any, table: str, condition: str, **params: Any) -> ComputationToken | None:
    rows = list(
        reader.execute_sql(
            _TOKEN_QUERY.format(table=table, condition=condition), **query_params(**params)
        )
    )
    if not rows:
        return None
    (
        local_id,
        global_id,
        protocol,
        stage,
        version,
        details,
        lock_owner,
        lock_expiration,
        creation_time,
        update_time,
        next_attempt,
        stage_details,
        blobs,
        requisitions,
    ) = rows[0]
    return ComputationToken(
        local_computation_id=local_id,
        global_computation_id=global_id,
        protocol=protocol,
        stage=stage,
        attempt=next_attempt - 1,
        version=version,
        computation_details=bytes_out(details),
        stage_details=bytes_out(stage_details),
        lock_owner=lock_owner,
        lock_expiration_time=optional_time_out(lock_expiration),
        creation_time=time_out(creation_time),
        update_time=time_out(update_time),
        blobs=tuple(
            BlobRef(blob_id, BlobDependency(dependency), path)
            for blob_id, dependency, path in blobs
        ),
        requisitions=tuple(
            RequisitionRecord(
                requisition_id=requisition_id,
                key=RequisitionKey(external_id, bytes_out(fingerprint)),
                details=bytes_out(requisition_details),
                path=path,
            )
            for requisition_id, external_id, fingerprint, requisition_details, path in requisitions
        ),
    )


def stage_attempts(reader: Any, local_id: int) -> list[StageAttempt]:
    rows = reader.execute_sql(
        "SELECT ComputationStage, Attempt, BeginTime, EndTime, ReasonEnded"
        " FROM ComputationStageAttempts WHERE ComputationId = @id"
        " ORDER BY BeginTime, ComputationStage, Attempt",
        **query_params(id=local_id),
    )
    return [
        StageAttempt(
            stage=stage,
            attempt=attempt,
            begin_time=time_out(begin),
            end_time=optional_time_out(end),
            reason_ended=None if reason is None else AttemptEndReason(reason),
        )
        for stage, attempt, begin, end, reason in rows
    ]


def stage_history(reader: Any, local_id: int) -> list[StageRecord]:
    rows = reader.execute_sql(
        "SELECT ComputationStage, CreationTime, EndTime, PreviousStage, FollowingStage, NextAttempt"
        " FROM ComputationStages WHERE ComputationId = @id ORDER BY CreationTime, ComputationStage",
        **query_params(id=local_id),
    )
    records = {
        stage: StageRecord(
            stage=stage,
            creation_time=time_out(created),
            end_time=optional_time_out(ended),
            previous_stage=previous,
            following_stage=following,
            next_attempt=next_attempt,
        )
        for stage, created, ended, previous, following, next_attempt in rows
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
