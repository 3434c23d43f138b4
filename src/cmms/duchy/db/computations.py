"""`ComputationsRepository`: the duchy's computations, their stages and the work queue.

Semantics follow the duchy internals spec (§1-§2), with its recommended fixes:

* `version` strictly increases with every change of a computation (`max(now in µs, previous + 1)`),
  so two writes in one millisecond can never share a version.
* Every mutation that takes a token checks its version against the stored one while holding the
  computation row (`SELECT ... FOR UPDATE` on PostgreSQL; SQLite write transactions are exclusive),
  and raises `StaleVersionError` on a mismatch.
* Claiming work changes the row with a conditional `UPDATE ... WHERE version = :seen AND
  lock_expiration_time <= :now`, so a computation is never claimed twice, whatever the isolation
  level or backend.
* Stage numbers are checked against `cmms.protocols.stages`; terminal stages are reached only
  through `finish_computation`.

Protocol messages (computation, stage and requisition details) are opaque bytes: callers serialize.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, delete, exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cmms.duchy.db._reading import read_attempts, read_stages, read_token
from cmms.duchy.db.clock import Clock, epoch_micros, system_clock, utc
from cmms.duchy.db.engine import read_connection
from cmms.duchy.db.errors import (
    AlreadyExistsError,
    ComputationAlreadyExistsError,
    ComputationNotFoundError,
    IllegalStageTransitionError,
    InitialStageInvalidError,
    InvalidArgumentError,
    LockOwnerMismatchError,
    NotAnOutputSlotError,
    OutputsNotWrittenError,
    RequisitionAlreadyExistsError,
    RequisitionNotFoundError,
    StaleVersionError,
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
from cmms.duchy.db.schema import computation_blob_references as blobs_t
from cmms.duchy.db.schema import computation_stage_attempts as attempts_t
from cmms.duchy.db.schema import computation_stages as stages_t
from cmms.duchy.db.schema import computations as computations_t
from cmms.duchy.db.schema import requisitions as requisitions_t
from cmms.protocols.stages import (
    AfterTransition,
    IllegalTransitionError,
    StageGraph,
    StageGraphError,
    UnknownProtocolError,
    stage_graph,
)

DEFAULT_LOCK_DURATION = timedelta(minutes=5)

# Claims retry when another claimer changed the chosen row first; each retry picks afresh.
_MAX_CLAIM_ROUNDS = 100
_MAX_CREATE_ROUNDS = 5

_ATTEMPT_REASON = {
    CompletedReason.SUCCEEDED: AttemptEndReason.SUCCEEDED,
    CompletedReason.FAILED: AttemptEndReason.ERROR,
    CompletedReason.CANCELED: AttemptEndReason.CANCELLED,
}

_c = computations_t.c


def random_local_id() -> int:
    """A random positive, nonzero int64."""
    while True:
        candidate = secrets.randbits(63)
        if candidate:
            return candidate


def next_version(previous: int, now: datetime) -> int:
    return max(epoch_micros(now), previous + 1)


class _LocalIdTaken(Exception):
    pass


class ComputationsRepository:
    """Async access to computations; one instance per engine, safe to share between tasks."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = system_clock,
        id_generator: Callable[[], int] = random_local_id,
        default_lock_duration: timedelta = DEFAULT_LOCK_DURATION,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._new_id = id_generator
        self._default_lock_duration = default_lock_duration

    # ---------------------------------------------------------------- transactions and helpers

    def _now(self) -> datetime:
        return utc(self._clock())

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.begin() as connection:
            yield connection

    def _read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return read_connection(self._engine)

    async def _lock(
        self, connection: AsyncConnection, local_id: int, expected_version: int | None
    ) -> Any:
        """The computation row, locked for this transaction, after the version check."""
        row = (
            await connection.execute(
                select(computations_t).where(_c.computation_id == local_id).with_for_update()
            )
        ).one_or_none()
        if row is None:
            raise ComputationNotFoundError(f"computation {local_id} not found")
        if expected_version is not None and row.version != expected_version:
            raise StaleVersionError(local_id, row.version, expected_version)
        return row

    async def _touch(
        self, connection: AsyncConnection, row: Any, now: datetime, **values: Any
    ) -> None:
        await connection.execute(
            update(computations_t)
            .where(_c.computation_id == row.computation_id)
            .values(version=next_version(row.version, now), update_time=now, **values)
        )

    async def _token(
        self, connection: AsyncConnection, condition: ColumnElement[bool]
    ) -> ComputationToken:
        token = await read_token(connection, condition)
        if token is None:
            raise ComputationNotFoundError("computation not found")
        return token

    @staticmethod
    def _graph(protocol: int) -> StageGraph:
        try:
            return stage_graph(protocol)
        except UnknownProtocolError as error:
            raise InvalidArgumentError(str(error)) from error

    # ---------------------------------------------------------------- reads

    async def get_token(self, global_computation_id: str) -> ComputationToken:
        """The token of the computation with this Kingdom id; `ComputationNotFoundError` if none."""
        if not global_computation_id:
            raise InvalidArgumentError("global_computation_id is required")
        async with self._read() as connection:
            token = await read_token(connection, _c.global_computation_id == global_computation_id)
        if token is None:
            raise ComputationNotFoundError(f"computation {global_computation_id!r} not found")
        return token

    async def get_token_by_local_id(self, local_computation_id: int) -> ComputationToken:
        async with self._read() as connection:
            token = await read_token(connection, _c.computation_id == local_computation_id)
        if token is None:
            raise ComputationNotFoundError(f"computation {local_computation_id} not found")
        return token

    async def get_token_by_requisition_key(self, key: RequisitionKey) -> ComputationToken:
        """The token of the computation that owns the requisition; NotFound if none does."""
        if not key.external_requisition_id or not key.requisition_fingerprint:
            raise InvalidArgumentError("the requisition key needs an id and a fingerprint")
        async with self._read() as connection:
            owner = _requisition_owner(key)
            token = await read_token(connection, _c.computation_id == owner)
        if token is None:
            raise ComputationNotFoundError(f"no computation has requisition {key}")
        return token

    async def stage_attempts(self, local_computation_id: int) -> list[StageAttempt]:
        """Every attempt row of the computation, oldest first."""
        async with self._read() as connection:
            return await read_attempts(connection, local_computation_id)

    async def stage_history(self, local_computation_id: int) -> list[StageRecord]:
        """Every stage the computation entered, in order."""
        async with self._read() as connection:
            return await read_stages(connection, local_computation_id)

    async def global_ids_in_stages(self, stages: Collection[StageKey]) -> list[str]:
        """Kingdom ids of the computations currently in any of `stages` (all of one protocol)."""
        protocol, numbers = _one_protocol(stages)
        self._graph(protocol)
        async with self._read() as connection:
            rows = await connection.execute(
                select(_c.global_computation_id)
                .where(_c.protocol == protocol, _c.computation_stage.in_(numbers))
                .order_by(_c.global_computation_id)
            )
            return [r.global_computation_id for r in rows]

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
        if not global_computation_id:
            raise InvalidArgumentError("global_computation_id is required")
        graph = self._graph(protocol)
        stage = graph.initial_stage.value if initial_stage is None else initial_stage
        if not graph.is_initial(stage):
            raise InitialStageInvalidError(
                f"stage {stage} is not an initial stage of {graph.protocol.name}"
            )
        keys = [r.key for r in requisitions]
        if len(set(keys)) != len(keys):
            raise InvalidArgumentError("the same requisition key is listed twice")
        for round_ in range(_MAX_CREATE_ROUNDS):
            try:
                return await self._insert_computation(
                    global_computation_id,
                    protocol,
                    stage,
                    computation_details,
                    computation_details_json,
                    stage_details,
                    requisitions,
                )
            except _LocalIdTaken:
                continue
            except IntegrityError as error:
                # A concurrent creator won a unique key between our checks and our insert; the
                # next round's checks name the conflict precisely.
                if round_ == _MAX_CREATE_ROUNDS - 1:
                    raise AlreadyExistsError(str(error.orig)) from error
        raise AlreadyExistsError("could not choose a free local computation id")

    async def _insert_computation(
        self,
        global_id: str,
        protocol: int,
        stage: int,
        details: bytes,
        details_json: str | None,
        stage_details: bytes,
        requisitions: Sequence[NewRequisition],
    ) -> ComputationToken:
        local_id = self._new_id()
        if local_id == 0:
            raise ValueError("the id generator produced 0, which is reserved")
        async with self._write() as connection:
            if await _exists(connection, _c.global_computation_id == global_id):
                raise ComputationAlreadyExistsError(f"computation {global_id!r} already exists")
            if await _exists(connection, _c.computation_id == local_id):
                raise _LocalIdTaken
            for requisition in requisitions:
                if await _requisition_exists(connection, requisition.key):
                    raise RequisitionAlreadyExistsError(
                        f"requisition {requisition.key} belongs to another computation"
                    )
            now = self._now()
            await connection.execute(
                insert(computations_t).values(
                    computation_id=local_id,
                    protocol=protocol,
                    computation_stage=stage,
                    version=epoch_micros(now),
                    global_computation_id=global_id,
                    lock_owner=None,
                    lock_expiration_time=now,
                    computation_details=details,
                    computation_details_json=details_json,
                    creation_time=now,
                    update_time=now,
                )
            )
            await connection.execute(
                insert(stages_t).values(
                    computation_id=local_id,
                    computation_stage=stage,
                    creation_time=now,
                    next_attempt=1,
                    details=stage_details,
                )
            )
            if requisitions:
                await connection.execute(
                    insert(requisitions_t),
                    [
                        {
                            "computation_id": local_id,
                            "requisition_id": index,
                            "external_requisition_id": r.key.external_requisition_id,
                            "requisition_fingerprint": r.key.requisition_fingerprint,
                            "path_to_blob": None,
                            "requisition_details": r.details,
                            "requisition_details_json": r.details_json,
                            "creation_time": now,
                            "update_time": now,
                        }
                        for index, r in enumerate(requisitions)
                    ],
                )
            return await self._token(connection, _c.computation_id == local_id)

    async def update_computation_details(
        self,
        token: ComputationToken,
        computation_details: bytes,
        *,
        requisition_details: Mapping[RequisitionKey, bytes] | None = None,
        computation_details_json: str | None = None,
    ) -> ComputationToken:
        """Replace the details (and whole details of the named requisitions of this computation)."""
        async with self._write() as connection:
            row = await self._lock(connection, token.local_computation_id, token.version)
            now = self._now()
            for key, details in (requisition_details or {}).items():
                result = await connection.execute(
                    update(requisitions_t)
                    .where(
                        requisitions_t.c.computation_id == row.computation_id,
                        requisitions_t.c.external_requisition_id == key.external_requisition_id,
                        requisitions_t.c.requisition_fingerprint == key.requisition_fingerprint,
                    )
                    .values(requisition_details=details, update_time=now)
                )
                if result.rowcount != 1:
                    raise RequisitionNotFoundError(
                        f"computation {row.computation_id} has no requisition {key}"
                    )
            await self._touch(
                connection,
                row,
                now,
                computation_details=computation_details,
                computation_details_json=computation_details_json,
            )
            return await self._token(connection, _c.computation_id == row.computation_id)

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
        """Move to `next_stage`, which must be a legal, non-terminal successor of the token's stage.

        Blob ids of the new stage: inputs first, then pass-throughs, then empty outputs.
        """
        graph = self._graph(token.protocol)
        try:
            graph.check_transition(token.stage, next_stage)
        except IllegalTransitionError as error:
            raise IllegalStageTransitionError(str(error)) from error
        except StageGraphError as error:
            raise InvalidArgumentError(str(error)) from error
        if graph.is_terminal(next_stage):
            raise IllegalStageTransitionError(
                f"{graph.stage(next_stage).name} is terminal: end computations with finish"
            )
        if after_transition == AfterTransition.UNSPECIFIED:
            raise InvalidArgumentError("after_transition must be specified")
        if output_blob_count < 0:
            raise InvalidArgumentError("output_blob_count must not be negative")
        if any(not p for p in (*input_blob_paths, *pass_through_blob_paths)):
            raise InvalidArgumentError("input and pass-through blob paths must not be blank")
        extension = self._default_lock_duration if lock_extension is None else lock_extension
        if extension <= timedelta(0):
            raise InvalidArgumentError("lock_extension must be positive")

        async with self._write() as connection:
            row = await self._lock(connection, token.local_computation_id, token.version)
            await _require_outputs_written(connection, row.computation_id, row.computation_stage)
            now = self._now()
            local_id, old_stage = row.computation_id, row.computation_stage
            if after_transition == AfterTransition.DO_NOT_ADD_TO_QUEUE:
                owner, expiration = None, None
            elif after_transition == AfterTransition.ADD_UNCLAIMED_TO_QUEUE:
                owner, expiration = None, now
            else:
                owner, expiration = row.lock_owner, now + extension
            await self._touch(
                connection,
                row,
                now,
                computation_stage=next_stage,
                lock_owner=owner,
                lock_expiration_time=expiration,
            )
            await connection.execute(
                update(stages_t)
                .where(
                    stages_t.c.computation_id == local_id, stages_t.c.computation_stage == old_stage
                )
                .values(end_time=now, following_stage=next_stage)
            )
            # A stage advanced before anyone claimed it has no attempt row: nothing to close.
            await _end_attempts(
                connection,
                local_id,
                old_stage,
                AttemptEndReason.SUCCEEDED,
                now,
                attempt=token.attempt,
            )
            attempt_starts = after_transition != AfterTransition.ADD_UNCLAIMED_TO_QUEUE
            await connection.execute(
                insert(stages_t).values(
                    computation_id=local_id,
                    computation_stage=next_stage,
                    creation_time=now,
                    next_attempt=2 if attempt_starts else 1,
                    previous_stage=old_stage,
                    details=stage_details,
                )
            )
            if attempt_starts:
                await connection.execute(
                    insert(attempts_t).values(
                        computation_id=local_id,
                        computation_stage=next_stage,
                        attempt=1,
                        begin_time=now,
                    )
                )
            slots: list[tuple[BlobDependency, str | None]]
            slots = [(BlobDependency.INPUT, p) for p in input_blob_paths]
            slots += [(BlobDependency.PASS_THROUGH, p) for p in pass_through_blob_paths]
            slots += [(BlobDependency.OUTPUT, None)] * output_blob_count
            if slots:
                await connection.execute(
                    insert(blobs_t),
                    [
                        {
                            "computation_id": local_id,
                            "computation_stage": next_stage,
                            "blob_id": blob_id,
                            "path_to_blob": path,
                            "dependency_type": int(dependency),
                        }
                        for blob_id, (dependency, path) in enumerate(slots)
                    ],
                )
            return await self._token(connection, _c.computation_id == local_id)

    async def finish_computation(
        self,
        token: ComputationToken,
        ending_stage: int,
        reason: CompletedReason,
        *,
        computation_details: bytes | None = None,
        computation_details_json: str | None = None,
    ) -> ComputationToken:
        """Move to a terminal stage from any stage, release the lock and close open attempts.

        The caller records `reason` in the (serialized) details it passes; the repository cannot
        edit protocol messages. Without `computation_details` the stored details are kept.
        """
        graph = self._graph(token.protocol)
        if not graph.is_terminal(ending_stage):
            raise InvalidArgumentError(
                f"stage {ending_stage} is not a terminal stage of {graph.protocol.name}"
            )
        if reason not in _ATTEMPT_REASON:
            raise InvalidArgumentError(f"{reason!r} is not a reason to finish a computation")
        async with self._write() as connection:
            row = await self._lock(connection, token.local_computation_id, token.version)
            now = self._now()
            local_id, old_stage = row.computation_id, row.computation_stage
            values: dict[str, Any] = {
                "computation_stage": ending_stage,
                "lock_owner": None,
                "lock_expiration_time": None,
            }
            if computation_details is not None:
                values["computation_details"] = computation_details
                values["computation_details_json"] = computation_details_json
            await self._touch(connection, row, now, **values)
            await _end_attempts(
                connection, local_id, old_stage, _ATTEMPT_REASON[reason], now, attempt=token.attempt
            )
            await _end_attempts(connection, local_id, None, AttemptEndReason.CANCELLED, now)
            if old_stage == ending_stage:
                await connection.execute(
                    update(stages_t)
                    .where(
                        stages_t.c.computation_id == local_id,
                        stages_t.c.computation_stage == ending_stage,
                    )
                    .values(end_time=now, next_attempt=1)
                )
            else:
                await connection.execute(
                    update(stages_t)
                    .where(
                        stages_t.c.computation_id == local_id,
                        stages_t.c.computation_stage == old_stage,
                    )
                    .values(end_time=now, following_stage=ending_stage)
                )
                await connection.execute(
                    insert(stages_t).values(
                        computation_id=local_id,
                        computation_stage=ending_stage,
                        creation_time=now,
                        next_attempt=1,
                        previous_stage=old_stage,
                        details=b"",
                    )
                )
            return await self._token(connection, _c.computation_id == local_id)

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

        Claimable means queued with an expiration at or before now (so an expired lock counts).
        Order: prioritized stages first, then oldest computation first. The claim opens a new
        attempt; if a previous owner's lock had expired, its attempt ends as LOCK_OVERWRITTEN.
        """
        if not owner:
            raise InvalidArgumentError("owner is required")
        duration = self._default_lock_duration if lock_duration is None else lock_duration
        if duration <= timedelta(0):
            raise InvalidArgumentError("lock_duration must be positive")
        order: list[ColumnElement[Any]] = []
        if prioritized_stages:
            order.append(case((_c.computation_stage.in_(list(prioritized_stages)), 0), else_=1))
        order += [_c.creation_time, _c.lock_expiration_time, _c.version]
        for _ in range(_MAX_CLAIM_ROUNDS):
            async with self._write() as connection:
                now = self._now()
                candidate = (
                    await connection.execute(
                        select(
                            _c.computation_id,
                            _c.version,
                            _c.computation_stage,
                            _c.lock_owner,
                            stages_t.c.next_attempt,
                        )
                        .select_from(
                            computations_t.join(
                                stages_t,
                                (stages_t.c.computation_id == _c.computation_id)
                                & (stages_t.c.computation_stage == _c.computation_stage),
                            )
                        )
                        .where(
                            _c.protocol == protocol,
                            _c.lock_expiration_time.is_not(None),
                            _c.lock_expiration_time <= now,
                        )
                        .order_by(*order)
                        .limit(1)
                        # PostgreSQL: skip rows another claimer is taking. SQLite ignores this;
                        # its write transactions are exclusive anyway.
                        .with_for_update(skip_locked=True, of=computations_t)
                    )
                ).one_or_none()
                if candidate is None:
                    return None
                claimed = (
                    await connection.execute(
                        update(computations_t)
                        .where(
                            _c.computation_id == candidate.computation_id,
                            _c.version == candidate.version,
                            _c.lock_expiration_time.is_not(None),
                            _c.lock_expiration_time <= now,
                        )
                        .values(
                            lock_owner=owner,
                            lock_expiration_time=now + duration,
                            update_time=now,
                            version=next_version(candidate.version, now),
                        )
                        .returning(_c.computation_id)
                    )
                ).one_or_none()
                if claimed is None:
                    continue
                local_id, stage = candidate.computation_id, candidate.computation_stage
                if candidate.lock_owner is not None:
                    await _end_attempts(
                        connection,
                        local_id,
                        stage,
                        AttemptEndReason.LOCK_OVERWRITTEN,
                        now,
                        attempt=candidate.next_attempt - 1,
                    )
                await connection.execute(
                    insert(attempts_t).values(
                        computation_id=local_id,
                        computation_stage=stage,
                        attempt=candidate.next_attempt,
                        begin_time=now,
                    )
                )
                await connection.execute(
                    update(stages_t)
                    .where(
                        stages_t.c.computation_id == local_id, stages_t.c.computation_stage == stage
                    )
                    .values(next_attempt=candidate.next_attempt + 1)
                )
                return await self._token(connection, _c.computation_id == local_id)
        return None

    async def enqueue_computation(
        self,
        token: ComputationToken,
        delay: timedelta = timedelta(0),
        *,
        expected_owner: str | None = None,
    ) -> ComputationToken:
        """Release the lock and queue the computation, claimable from now + `delay`.

        If someone holds the lock it must be `expected_owner` (`LockOwnerMismatchError`
        otherwise). A computation in a terminal stage cannot be queued.
        """
        if delay < timedelta(0):
            raise InvalidArgumentError("delay must not be negative")
        async with self._write() as connection:
            row = await self._lock(connection, token.local_computation_id, token.version)
            if row.lock_owner is not None and row.lock_owner != expected_owner:
                raise LockOwnerMismatchError(
                    f"computation {row.computation_id} is locked by {row.lock_owner!r}, "
                    f"not {expected_owner!r}"
                )
            if self._graph(row.protocol).is_terminal(row.computation_stage):
                raise TerminalStageError(f"computation {row.computation_id} has ended")
            now = self._now()
            await self._touch(
                connection, row, now, lock_owner=None, lock_expiration_time=now + delay
            )
            return await self._token(connection, _c.computation_id == row.computation_id)

    # ---------------------------------------------------------------- blobs and requisitions

    async def record_output_blob_path(
        self, token: ComputationToken, blob_id: int, path: str
    ) -> ComputationToken:
        """Record where an OUTPUT slot of the current stage was written."""
        if not path:
            raise InvalidArgumentError("blob path must not be blank")
        async with self._write() as connection:
            row = await self._lock(connection, token.local_computation_id, token.version)
            slot = (
                await connection.execute(
                    select(blobs_t.c.dependency_type).where(
                        blobs_t.c.computation_id == row.computation_id,
                        blobs_t.c.computation_stage == row.computation_stage,
                        blobs_t.c.blob_id == blob_id,
                    )
                )
            ).one_or_none()
            if slot is None or slot.dependency_type != BlobDependency.OUTPUT:
                kind = "no" if slot is None else BlobDependency(slot.dependency_type).name
                raise NotAnOutputSlotError(
                    f"blob {blob_id} of computation {row.computation_id} is {kind} slot, "
                    "not an OUTPUT"
                )
            await connection.execute(
                update(blobs_t)
                .where(
                    blobs_t.c.computation_id == row.computation_id,
                    blobs_t.c.computation_stage == row.computation_stage,
                    blobs_t.c.blob_id == blob_id,
                )
                .values(path_to_blob=path)
            )
            await self._touch(connection, row, self._now())
            return await self._token(connection, _c.computation_id == row.computation_id)

    async def record_requisition_fulfillment(
        self,
        local_computation_id: int,
        key: RequisitionKey,
        path: str,
        *,
        update_details: Callable[[bytes], bytes] | None = None,
    ) -> ComputationToken:
        """Record that a requisition of this computation was fulfilled here, at `path`.

        No version check: an upload may race with other updates of the computation. The details
        are rewritten by `update_details` on the stored bytes, inside the transaction.
        """
        if not path:
            raise InvalidArgumentError("blob path must not be blank")
        async with self._write() as connection:
            row = await self._lock(connection, local_computation_id, expected_version=None)
            requisition = (
                await connection.execute(
                    select(requisitions_t.c.requisition_id, requisitions_t.c.requisition_details)
                    .where(
                        requisitions_t.c.computation_id == local_computation_id,
                        requisitions_t.c.external_requisition_id == key.external_requisition_id,
                        requisitions_t.c.requisition_fingerprint == key.requisition_fingerprint,
                    )
                    .with_for_update()
                )
            ).one_or_none()
            if requisition is None:
                raise RequisitionNotFoundError(
                    f"computation {local_computation_id} has no requisition {key}"
                )
            now = self._now()
            values: dict[str, Any] = {"path_to_blob": path, "update_time": now}
            if update_details is not None:
                values["requisition_details"] = update_details(
                    bytes(requisition.requisition_details)
                )
            await connection.execute(
                update(requisitions_t)
                .where(
                    requisitions_t.c.computation_id == local_computation_id,
                    requisitions_t.c.requisition_id == requisition.requisition_id,
                )
                .values(**values)
            )
            await self._touch(connection, row, now)
            return await self._token(connection, _c.computation_id == local_computation_id)

    # ---------------------------------------------------------------- deletion

    async def delete_computation(self, local_computation_id: int) -> DeletedComputation:
        """Delete the computation and everything under it; an unknown id is not an error.

        Returns the blob paths the computation referenced: the caller deletes those blobs.
        """
        async with self._write() as connection:
            return await _delete(connection, local_computation_id)

    async def purge_computations(
        self, updated_before: datetime, stages: Collection[StageKey], *, force: bool
    ) -> PurgeResult:
        """Select (and with `force`, delete) computations in terminal `stages` of one protocol
        that were last updated at or before `updated_before`."""
        protocol, numbers = _one_protocol(stages)
        graph = self._graph(protocol)
        for number in numbers:
            if not graph.is_terminal(number):
                raise InvalidArgumentError(
                    f"stage {number} is not a terminal stage of {graph.protocol.name}"
                )
        cutoff = utc(updated_before)
        async with self._write() as connection:
            rows = await connection.execute(
                select(_c.computation_id, _c.global_computation_id)
                .where(
                    _c.protocol == protocol,
                    _c.computation_stage.in_(numbers),
                    _c.update_time <= cutoff,
                )
                .order_by(_c.global_computation_id)
                .with_for_update()
            )
            selected = list(rows)
            if force:
                removed = tuple([await _delete(connection, r.computation_id) for r in selected])
            else:
                removed = tuple([await _blob_paths(connection, r.computation_id) for r in selected])
        return PurgeResult(
            purge_count=len(selected),
            global_ids=tuple(r.global_computation_id for r in selected),
            computation_blob_paths=tuple(p for d in removed for p in d.computation_blob_paths),
            requisition_blob_paths=tuple(p for d in removed for p in d.requisition_blob_paths),
            deleted=force,
            per_computation=removed,
        )


# -------------------------------------------------------------------- module helpers


def _one_protocol(stages: Collection[StageKey]) -> tuple[int, list[int]]:
    protocols = {s.protocol for s in stages}
    if len(protocols) != 1:
        raise InvalidArgumentError("stages must be given, all of one protocol")
    return protocols.pop(), sorted({s.stage for s in stages})


def _requisition_owner(key: RequisitionKey) -> Any:
    return (
        select(requisitions_t.c.computation_id)
        .where(
            requisitions_t.c.external_requisition_id == key.external_requisition_id,
            requisitions_t.c.requisition_fingerprint == key.requisition_fingerprint,
        )
        .scalar_subquery()
    )


async def _exists(connection: AsyncConnection, condition: ColumnElement[bool]) -> bool:
    return bool((await connection.execute(select(exists().where(condition)))).scalar())


async def _requisition_exists(connection: AsyncConnection, key: RequisitionKey) -> bool:
    return await _exists(
        connection,
        (requisitions_t.c.external_requisition_id == key.external_requisition_id)
        & (requisitions_t.c.requisition_fingerprint == key.requisition_fingerprint),
    )


async def _require_outputs_written(connection: AsyncConnection, local_id: int, stage: int) -> None:
    missing = (
        (
            await connection.execute(
                select(blobs_t.c.blob_id)
                .where(
                    blobs_t.c.computation_id == local_id,
                    blobs_t.c.computation_stage == stage,
                    blobs_t.c.dependency_type == int(BlobDependency.OUTPUT),
                    (blobs_t.c.path_to_blob.is_(None)) | (blobs_t.c.path_to_blob == ""),
                )
                .order_by(blobs_t.c.blob_id)
            )
        )
        .scalars()
        .all()
    )
    if missing:
        raise OutputsNotWrittenError(
            f"computation {local_id}: output blobs {list(missing)} have no path yet"
        )


async def _end_attempts(
    connection: AsyncConnection,
    local_id: int,
    stage: int | None,
    reason: AttemptEndReason,
    now: datetime,
    *,
    attempt: int | None = None,
) -> None:
    """End the unfinished attempts matching `stage` and `attempt` (None: any)."""
    conditions = [attempts_t.c.computation_id == local_id, attempts_t.c.end_time.is_(None)]
    if stage is not None:
        conditions.append(attempts_t.c.computation_stage == stage)
    if attempt is not None:
        conditions.append(attempts_t.c.attempt == attempt)
    await connection.execute(
        update(attempts_t).where(*conditions).values(end_time=now, reason_ended=int(reason))
    )


async def _blob_paths(connection: AsyncConnection, local_id: int) -> DeletedComputation:
    global_id = (
        await connection.execute(
            select(_c.global_computation_id).where(_c.computation_id == local_id)
        )
    ).scalar_one_or_none()
    blob_paths = (
        await connection.execute(
            select(blobs_t.c.path_to_blob)
            .where(blobs_t.c.computation_id == local_id, blobs_t.c.path_to_blob.is_not(None))
            .order_by(blobs_t.c.computation_stage, blobs_t.c.blob_id)
        )
    ).scalars()
    requisition_paths = (
        await connection.execute(
            select(requisitions_t.c.path_to_blob)
            .where(
                requisitions_t.c.computation_id == local_id,
                requisitions_t.c.path_to_blob.is_not(None),
            )
            .order_by(requisitions_t.c.requisition_id)
        )
    ).scalars()
    return DeletedComputation(
        local_computation_id=local_id,
        global_computation_id=global_id,
        # A blob can be an output of one stage and an input of the next: report it once.
        computation_blob_paths=tuple(dict.fromkeys(p for p in blob_paths if p)),
        requisition_blob_paths=tuple(p for p in requisition_paths if p),
    )


async def _delete(connection: AsyncConnection, local_id: int) -> DeletedComputation:
    found = await _blob_paths(connection, local_id)
    if found.existed:
        await connection.execute(delete(computations_t).where(_c.computation_id == local_id))
    return found
