"""`SpannerComputationsRepository`: the duchy's computations on Cloud Spanner.

Same semantics as the SQLAlchemy `ComputationsRepository` (the conformance suite checks both):

* Each operation is one read-write transaction: it reads the computation row (Spanner locks what a
  read-write transaction reads), checks the token's version, and buffers mutations. Two
  transactions that read and change the same row cannot both commit: Spanner aborts one and
  `run_in_transaction` re-runs it, when it sees the other's write (and a stale version).
* Claiming reads the first queued row from the NULL_FILTERED claim-queue index and writes the lock
  in the same transaction, so a computation is never handed to two claimers.
* `version` is `max(now in µs, previous + 1)` from the injected clock, as on SQL. Every write also
  stamps `CommitTime` with Spanner's commit timestamp, and the returned token is read at that
  timestamp.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from google.api_core.exceptions import AlreadyExists
from google.cloud import spanner

from cmms.common.spanner.connection import SpannerConnection
from cmms.common.spanner.params import query_params
from cmms.common.spanner.values import bytes_in, bytes_out
from cmms.duchy.db.clock import Clock, epoch_micros, system_clock, utc
from cmms.duchy.db.computations import DEFAULT_LOCK_DURATION, random_local_id
from cmms.duchy.db.errors import (
    AlreadyExistsError,
    ComputationAlreadyExistsError,
    ComputationNotFoundError,
    InvalidArgumentError,
    LockOwnerMismatchError,
    NotAnOutputSlotError,
    RequisitionAlreadyExistsError,
    RequisitionNotFoundError,
    TerminalStageError,
)
from cmms.duchy.db.records import (
    AttemptEndReason,
    BlobDependency,
    CompletedReason,
    ComputationToken,
    DeletedComputation,
    NewRequisition,
    PurgeResult,
    RequisitionKey,
    StageAttempt,
    StageKey,
    StageRecord,
)
from cmms.duchy.db.rules import (
    ATTEMPT_REASON,
    blob_slots,
    check_finish,
    graph_of,
    initial_stage_for_create,
    lock_after_advance,
    lock_duration_for_claim,
    lock_extension_for_advance,
    one_protocol,
    terminal_stages_for_purge,
)
from cmms.duchy.db.spanner import computation_rows as rows
from cmms.duchy.db.spanner import reading
from cmms.duchy.db.spanner.schema import CLAIM_QUEUE_INDEX, GLOBAL_ID_INDEX
from cmms.duchy.db.spanner.transactions import SpannerRunner
from cmms.protocols.stages import AfterTransition

_MAX_CREATE_ROUNDS = 5

# The emulator hint is ignored by Cloud Spanner. The emulator cannot tell that the query's
# `LockExpirationTime IS NOT NULL` makes the NULL_FILTERED index complete for it; Spanner can.
_CLAIM_QUERY = f"""
SELECT c.ComputationId, c.Version, c.ComputationStage, c.LockOwner, s.NextAttempt
FROM Computations@{{FORCE_INDEX={CLAIM_QUEUE_INDEX},
                   spanner_emulator.disable_query_null_filtered_index_check=true}} AS c
JOIN ComputationStages AS s
  ON s.ComputationId = c.ComputationId AND s.ComputationStage = c.ComputationStage
WHERE c.Protocol = @protocol AND c.LockExpirationTime IS NOT NULL
  AND c.LockExpirationTime <= @now
ORDER BY CASE WHEN c.ComputationStage IN UNNEST(@prioritized) THEN 0 ELSE 1 END,
         c.CreationTime, c.LockExpirationTime, c.Version
LIMIT 1
"""

_COMPUTATION_COLUMNS = (
    "ComputationId",
    "Protocol",
    "ComputationStage",
    "Version",
    "GlobalComputationId",
    "LockOwner",
    "LockExpirationTime",
    "ComputationDetails",
    "ComputationDetailsJson",
    "CreationTime",
    "UpdateTime",
    "CommitTime",
)
_REQUISITION_COLUMNS = (
    "ComputationId",
    "RequisitionId",
    "ExternalRequisitionId",
    "RequisitionFingerprint",
    "PathToBlob",
    "RequisitionDetails",
    "RequisitionDetailsJson",
    "CreationTime",
    "UpdateTime",
)


class _LocalIdTaken(Exception):
    pass


class SpannerComputationsRepository:
    """Async access to computations in Spanner; one per connection, safe to share between tasks."""

    def __init__(
        self,
        connection: SpannerConnection,
        *,
        clock: Clock = system_clock,
        id_generator: Callable[[], int] = random_local_id,
        default_lock_duration: timedelta = DEFAULT_LOCK_DURATION,
    ) -> None:
        self._spanner = SpannerRunner(connection)
        self._clock = clock
        self._new_id = id_generator
        self._default_lock_duration = default_lock_duration

    def _now(self) -> datetime:
        return utc(self._clock())

    async def _write(self, work: Callable[[Any], int]) -> ComputationToken:
        """Run `work` (returning the computation id) and read the token it committed."""

        def read_back(snapshot: Any, local_id: int) -> ComputationToken:
            token = reading.token_by_local_id(snapshot, local_id)
            if token is None:
                raise ComputationNotFoundError(f"computation {local_id} not found")
            return token

        token: ComputationToken = await self._spanner.write_then_read(work, read_back)
        return token

    # ---------------------------------------------------------------- reads

    async def get_token(self, global_computation_id: str) -> ComputationToken:
        if not global_computation_id:
            raise InvalidArgumentError("global_computation_id is required")
        token = await self._spanner.read(
            lambda s: reading.token_by_global_id(s, global_computation_id)
        )
        if token is None:
            raise ComputationNotFoundError(f"computation {global_computation_id!r} not found")
        return token

    async def get_token_by_local_id(self, local_computation_id: int) -> ComputationToken:
        token = await self._spanner.read(
            lambda s: reading.token_by_local_id(s, local_computation_id)
        )
        if token is None:
            raise ComputationNotFoundError(f"computation {local_computation_id} not found")
        return token

    async def get_token_by_requisition_key(self, key: RequisitionKey) -> ComputationToken:
        if not key.external_requisition_id or not key.requisition_fingerprint:
            raise InvalidArgumentError("the requisition key needs an id and a fingerprint")
        token = await self._spanner.read(lambda s: reading.token_by_requisition_key(s, key))
        if token is None:
            raise ComputationNotFoundError(f"no computation has requisition {key}")
        return token

    async def stage_attempts(self, local_computation_id: int) -> list[StageAttempt]:
        return await self._spanner.read(lambda s: reading.stage_attempts(s, local_computation_id))

    async def stage_history(self, local_computation_id: int) -> list[StageRecord]:
        return await self._spanner.read(lambda s: reading.stage_history(s, local_computation_id))

    async def global_ids_in_stages(self, stages: Collection[StageKey]) -> list[str]:
        protocol, numbers = one_protocol(stages)
        graph_of(protocol)

        def query(snapshot: Any) -> list[str]:
            rows = snapshot.execute_sql(
                "SELECT GlobalComputationId FROM Computations"
                " WHERE Protocol = @protocol AND ComputationStage IN UNNEST(@stages)"
                " ORDER BY GlobalComputationId",
                **query_params(protocol=protocol, stages=numbers),
            )
            return [row[0] for row in rows]

        return await self._spanner.read(query)

    # ---------------------------------------------------------------- create and update

    async def create_computation(
        self,
        *,
        global_computation_id: str,
        protocol: int,
        computation_details: bytes,
        initial_stage: int | None = None,
        stage_details: bytes = b"",
        requisitions: Sequence[NewRequisition] = (),
        computation_details_json: str | None = None,
    ) -> ComputationToken:
        """Create a computation in an initial stage, claimable at once (expiration = now)."""
        stage = initial_stage_for_create(
            global_computation_id, protocol, initial_stage, requisitions
        )
        for round_ in range(_MAX_CREATE_ROUNDS):
            local_id = self._new_id()
            if local_id == 0:
                raise ValueError("the id generator produced 0, which is reserved")

            def insert(transaction: Any, local_id: int = local_id) -> int:
                self._insert_computation(
                    transaction,
                    local_id,
                    global_computation_id,
                    protocol,
                    stage,
                    computation_details,
                    computation_details_json,
                    stage_details,
                    requisitions,
                )
                return local_id

            try:
                return await self._write(insert)
            except _LocalIdTaken:
                continue
            except AlreadyExists as error:
                # Only a writer that committed between our reads and our commit gets here (the
                # transaction's own checks name conflicts precisely); the next round names it.
                if round_ == _MAX_CREATE_ROUNDS - 1:
                    raise AlreadyExistsError(str(error)) from error
        raise AlreadyExistsError("could not choose a free local computation id")

    def _insert_computation(
        self,
        transaction: Any,
        local_id: int,
        global_id: str,
        protocol: int,
        stage: int,
        details: bytes,
        details_json: str | None,
        stage_details: bytes,
        requisitions: Sequence[NewRequisition],
    ) -> None:
        if rows.exists(
            transaction,
            f"SELECT 1 FROM Computations@{{FORCE_INDEX={GLOBAL_ID_INDEX}}}"
            " WHERE GlobalComputationId = @global_id",
            global_id=global_id,
        ):
            raise ComputationAlreadyExistsError(f"computation {global_id!r} already exists")
        if rows.exists(
            transaction, "SELECT 1 FROM Computations WHERE ComputationId = @id", id=local_id
        ):
            raise _LocalIdTaken
        for requisition in requisitions:
            if rows.requisition_owner(transaction, requisition.key) is not None:
                raise RequisitionAlreadyExistsError(
                    f"requisition {requisition.key} belongs to another computation"
                )
        now = self._now()
        transaction.insert(
            "Computations",
            columns=_COMPUTATION_COLUMNS,
            values=[
                (
                    local_id,
                    protocol,
                    stage,
                    epoch_micros(now),
                    global_id,
                    None,
                    now,
                    bytes_in(details),
                    details_json,
                    now,
                    now,
                    spanner.COMMIT_TIMESTAMP,
                )
            ],
        )
        transaction.insert(
            "ComputationStages",
            columns=("ComputationId", "ComputationStage", "CreationTime", "NextAttempt", "Details"),
            values=[(local_id, stage, now, 1, bytes_in(stage_details))],
        )
        if requisitions:
            transaction.insert(
                "Requisitions",
                columns=_REQUISITION_COLUMNS,
                values=[
                    (
                        local_id,
                        index,
                        r.key.external_requisition_id,
                        bytes_in(r.key.requisition_fingerprint),
                        None,
                        bytes_in(r.details),
                        r.details_json,
                        now,
                        now,
                    )
                    for index, r in enumerate(requisitions)
                ],
            )

    async def update_computation_details(
        self,
        token: ComputationToken,
        computation_details: bytes,
        *,
        requisition_details: Mapping[RequisitionKey, bytes] | None = None,
        computation_details_json: str | None = None,
    ) -> ComputationToken:
        def update(transaction: Any) -> int:
            row = rows.lock(transaction, token.local_computation_id, token.version)
            now = self._now()
            for key, details in (requisition_details or {}).items():
                requisition_id = rows.requisition_id(transaction, row.computation_id, key)
                if requisition_id is None:
                    raise RequisitionNotFoundError(
                        f"computation {row.computation_id} has no requisition {key}"
                    )
                transaction.update(
                    "Requisitions",
                    columns=("ComputationId", "RequisitionId", "RequisitionDetails", "UpdateTime"),
                    values=[(row.computation_id, requisition_id, bytes_in(details), now)],
                )
            rows.touch(
                transaction,
                row,
                now,
                ComputationDetails=bytes_in(computation_details),
                ComputationDetailsJson=computation_details_json,
            )
            return row.computation_id

        return await self._write(update)

    # ---------------------------------------------------------------- stage changes

    async def advance_stage(
        self,
        token: ComputationToken,
        next_stage: int,
        *,
        after_transition: AfterTransition,
        input_blob_paths: Sequence[str] = (),
        pass_through_blob_paths: Sequence[str] = (),
        output_blob_count: int = 0,
        stage_details: bytes = b"",
        lock_extension: timedelta | None = None,
    ) -> ComputationToken:
        """Move to `next_stage`, a legal, non-terminal successor of the token's stage."""
        extension = lock_extension_for_advance(
            token,
            next_stage,
            after_transition,
            (*input_blob_paths, *pass_through_blob_paths),
            output_blob_count,
            lock_extension,
            self._default_lock_duration,
        )
        slots = blob_slots(input_blob_paths, pass_through_blob_paths, output_blob_count)

        def advance(transaction: Any) -> int:
            row = rows.lock(transaction, token.local_computation_id, token.version)
            rows.require_outputs_written(transaction, row.computation_id, row.stage)
            now = self._now()
            local_id, old_stage = row.computation_id, row.stage
            owner, expiration = lock_after_advance(after_transition, row.lock_owner, now, extension)
            rows.touch(
                transaction,
                row,
                now,
                ComputationStage=next_stage,
                LockOwner=owner,
                LockExpirationTime=expiration,
            )
            transaction.update(
                "ComputationStages",
                columns=("ComputationId", "ComputationStage", "EndTime", "FollowingStage"),
                values=[(local_id, old_stage, now, next_stage)],
            )
            # A stage advanced before anyone claimed it has no attempt row: nothing to close.
            rows.end_attempts(
                transaction,
                local_id,
                now,
                lambda stage, attempt: (
                    AttemptEndReason.SUCCEEDED
                    if (stage, attempt) == (old_stage, token.attempt)
                    else None
                ),
            )
            attempt_starts = after_transition != AfterTransition.ADD_UNCLAIMED_TO_QUEUE
            transaction.insert(
                "ComputationStages",
                columns=(
                    "ComputationId",
                    "ComputationStage",
                    "CreationTime",
                    "NextAttempt",
                    "PreviousStage",
                    "Details",
                ),
                values=[
                    (
                        local_id,
                        next_stage,
                        now,
                        2 if attempt_starts else 1,
                        old_stage,
                        bytes_in(stage_details),
                    )
                ],
            )
            if attempt_starts:
                transaction.insert(
                    "ComputationStageAttempts",
                    columns=("ComputationId", "ComputationStage", "Attempt", "BeginTime"),
                    values=[(local_id, next_stage, 1, now)],
                )
            if slots:
                transaction.insert(
                    "ComputationBlobReferences",
                    columns=(
                        "ComputationId",
                        "ComputationStage",
                        "BlobId",
                        "PathToBlob",
                        "DependencyType",
                    ),
                    values=[
                        (local_id, next_stage, blob_id, path, int(dependency))
                        for blob_id, (dependency, path) in enumerate(slots)
                    ],
                )
            return local_id

        return await self._write(advance)

    async def finish_computation(
        self,
        token: ComputationToken,
        ending_stage: int,
        reason: CompletedReason,
        *,
        computation_details: bytes | None = None,
        computation_details_json: str | None = None,
    ) -> ComputationToken:
        """Move to a terminal stage from any stage, release the lock and close open attempts."""
        check_finish(token, ending_stage, reason)

        def finish(transaction: Any) -> int:
            row = rows.lock(transaction, token.local_computation_id, token.version)
            now = self._now()
            local_id, old_stage = row.computation_id, row.stage
            values: dict[str, Any] = {
                "ComputationStage": ending_stage,
                "LockOwner": None,
                "LockExpirationTime": None,
            }
            if computation_details is not None:
                values["ComputationDetails"] = bytes_in(computation_details)
                values["ComputationDetailsJson"] = computation_details_json
            rows.touch(transaction, row, now, **values)
            # The token's attempt ends for `reason`; any other still open is cancelled.
            rows.end_attempts(
                transaction,
                local_id,
                now,
                lambda stage, attempt: (
                    ATTEMPT_REASON[reason]
                    if (stage, attempt) == (old_stage, token.attempt)
                    else AttemptEndReason.CANCELLED
                ),
            )
            if old_stage == ending_stage:
                transaction.update(
                    "ComputationStages",
                    columns=("ComputationId", "ComputationStage", "EndTime", "NextAttempt"),
                    values=[(local_id, ending_stage, now, 1)],
                )
            else:
                transaction.update(
                    "ComputationStages",
                    columns=("ComputationId", "ComputationStage", "EndTime", "FollowingStage"),
                    values=[(local_id, old_stage, now, ending_stage)],
                )
                transaction.insert(
                    "ComputationStages",
                    columns=(
                        "ComputationId",
                        "ComputationStage",
                        "CreationTime",
                        "NextAttempt",
                        "PreviousStage",
                        "Details",
                    ),
                    values=[(local_id, ending_stage, now, 1, old_stage, bytes_in(b""))],
                )
            return local_id

        return await self._write(finish)

    # ---------------------------------------------------------------- the work queue

    async def claim_work(
        self,
        protocol: int,
        owner: str,
        *,
        lock_duration: timedelta | None = None,
        prioritized_stages: Collection[int] = (),
    ) -> ComputationToken | None:
        """Lock the next claimable computation of `protocol` for `owner`, or return None.

        Reading the candidate and writing the lock happen in one read-write transaction: if
        another claimer takes the same row first, Spanner aborts this transaction and the retry
        picks the next candidate.
        """
        duration = lock_duration_for_claim(owner, lock_duration, self._default_lock_duration)
        prioritized = sorted(set(prioritized_stages))

        def claim(transaction: Any) -> int | None:
            now = self._now()
            candidates = list(
                transaction.execute_sql(
                    _CLAIM_QUERY,
                    **query_params(protocol=protocol, now=now, prioritized=prioritized),
                )
            )
            if not candidates:
                return None
            local_id, version, stage, previous_owner, next_attempt = candidates[0]
            row = rows.ComputationRow(local_id, protocol, stage, version, previous_owner)
            rows.touch(
                transaction,
                row,
                now,
                LockOwner=owner,
                LockExpirationTime=now + duration,
            )
            if previous_owner is not None:
                # The previous holder's lock expired: its attempt is overwritten.
                rows.end_attempts(
                    transaction,
                    local_id,
                    now,
                    lambda s, a: (
                        AttemptEndReason.LOCK_OVERWRITTEN
                        if (s, a) == (stage, next_attempt - 1)
                        else None
                    ),
                )
            transaction.insert(
                "ComputationStageAttempts",
                columns=("ComputationId", "ComputationStage", "Attempt", "BeginTime"),
                values=[(local_id, stage, next_attempt, now)],
            )
            transaction.update(
                "ComputationStages",
                columns=("ComputationId", "ComputationStage", "NextAttempt"),
                values=[(local_id, stage, next_attempt + 1)],
            )
            return int(local_id)

        def read_back(snapshot: Any, local_id: int | None) -> ComputationToken | None:
            return None if local_id is None else reading.token_by_local_id(snapshot, local_id)

        claimed: ComputationToken | None = await self._spanner.write_then_read(claim, read_back)
        return claimed

    async def enqueue_computation(
        self,
        token: ComputationToken,
        delay: timedelta = timedelta(0),
        *,
        expected_owner: str | None = None,
    ) -> ComputationToken:
        """Release the lock and queue the computation, claimable from now + `delay`."""
        if delay < timedelta(0):
            raise InvalidArgumentError("delay must not be negative")

        def enqueue(transaction: Any) -> int:
            row = rows.lock(transaction, token.local_computation_id, token.version)
            if row.lock_owner is not None and row.lock_owner != expected_owner:
                raise LockOwnerMismatchError(
                    f"computation {row.computation_id} is locked by {row.lock_owner!r}, "
                    f"not {expected_owner!r}"
                )
            if graph_of(row.protocol).is_terminal(row.stage):
                raise TerminalStageError(f"computation {row.computation_id} has ended")
            now = self._now()
            rows.touch(transaction, row, now, LockOwner=None, LockExpirationTime=now + delay)
            return row.computation_id

        return await self._write(enqueue)

    # ---------------------------------------------------------------- blobs and requisitions

    async def record_output_blob_path(
        self, token: ComputationToken, blob_id: int, path: str
    ) -> ComputationToken:
        """Record where an OUTPUT slot of the current stage was written."""
        if not path:
            raise InvalidArgumentError("blob path must not be blank")

        def record(transaction: Any) -> int:
            row = rows.lock(transaction, token.local_computation_id, token.version)
            slots = list(
                transaction.execute_sql(
                    "SELECT DependencyType FROM ComputationBlobReferences"
                    " WHERE ComputationId = @id AND ComputationStage = @stage"
                    " AND BlobId = @blob_id",
                    **query_params(id=row.computation_id, stage=row.stage, blob_id=blob_id),
                )
            )
            dependency = BlobDependency(slots[0][0]) if slots else None
            if dependency != BlobDependency.OUTPUT:
                kind = "no" if dependency is None else dependency.name
                raise NotAnOutputSlotError(
                    f"blob {blob_id} of computation {row.computation_id} is {kind} slot, "
                    "not an OUTPUT"
                )
            transaction.update(
                "ComputationBlobReferences",
                columns=("ComputationId", "ComputationStage", "BlobId", "PathToBlob"),
                values=[(row.computation_id, row.stage, blob_id, path)],
            )
            rows.touch(transaction, row, self._now())
            return row.computation_id

        return await self._write(record)

    async def record_requisition_fulfillment(
        self,
        local_computation_id: int,
        key: RequisitionKey,
        path: str,
        *,
        update_details: Callable[[bytes], bytes] | None = None,
    ) -> ComputationToken:
        """Record that a requisition of this computation was fulfilled here, at `path`.

        No version check. `update_details` rewrites the stored details inside the transaction,
        so it may run more than once if Spanner retries: it must be a pure function.
        """
        if not path:
            raise InvalidArgumentError("blob path must not be blank")

        def record(transaction: Any) -> int:
            row = rows.lock(transaction, local_computation_id, expected_version=None)
            found = list(
                transaction.execute_sql(
                    "SELECT RequisitionId, RequisitionDetails FROM Requisitions"
                    " WHERE ComputationId = @id AND ExternalRequisitionId = @external_id"
                    " AND RequisitionFingerprint = @fingerprint",
                    **query_params(
                        id=local_computation_id,
                        external_id=key.external_requisition_id,
                        fingerprint=key.requisition_fingerprint,
                    ),
                )
            )
            if not found:
                raise RequisitionNotFoundError(
                    f"computation {local_computation_id} has no requisition {key}"
                )
            requisition_id, stored_details = found[0]
            now = self._now()
            columns = ["ComputationId", "RequisitionId", "PathToBlob", "UpdateTime"]
            values: list[Any] = [local_computation_id, requisition_id, path, now]
            if update_details is not None:
                columns.append("RequisitionDetails")
                values.append(bytes_in(update_details(bytes_out(stored_details))))
            transaction.update("Requisitions", columns=columns, values=[values])
            rows.touch(transaction, row, now)
            return local_computation_id

        return await self._write(record)

    # ---------------------------------------------------------------- deletion

    async def delete_computation(self, local_computation_id: int) -> DeletedComputation:
        """Delete the computation and everything under it; an unknown id is not an error."""

        def delete(transaction: Any) -> DeletedComputation:
            return rows.delete(transaction, local_computation_id)

        deleted, _ = await self._spanner.write(delete)
        return deleted

    async def purge_computations(
        self, updated_before: datetime, stages: Collection[StageKey], *, force: bool
    ) -> PurgeResult:
        protocol, numbers = terminal_stages_for_purge(stages)
        cutoff = utc(updated_before)

        def purge(transaction: Any) -> tuple[list[tuple[int, str]], tuple[DeletedComputation, ...]]:
            selected = [
                (int(local_id), str(global_id))
                for local_id, global_id in transaction.execute_sql(
                    "SELECT ComputationId, GlobalComputationId FROM Computations"
                    " WHERE Protocol = @protocol AND ComputationStage IN UNNEST(@stages)"
                    " AND UpdateTime <= @cutoff ORDER BY GlobalComputationId",
                    **query_params(protocol=protocol, stages=numbers, cutoff=cutoff),
                )
            ]
            act = rows.delete if force else rows.blob_paths
            return selected, tuple(act(transaction, local_id) for local_id, _ in selected)

        (selected, removed), _ = await self._spanner.write(purge)
        return PurgeResult(
            purge_count=len(selected),
            global_ids=tuple(global_id for _, global_id in selected),
            computation_blob_paths=tuple(p for d in removed for p in d.computation_blob_paths),
            requisition_blob_paths=tuple(p for d in removed for p in d.requisition_blob_paths),
            deleted=force,
            per_computation=removed,
        )
