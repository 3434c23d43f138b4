"""The repository interfaces every duchy database backend implements.

`ComputationsRepository` and friends (SQLAlchemy: SQLite, PostgreSQL) and the Spanner classes of
`cmms.duchy.db.spanner` both satisfy these Protocols structurally; services depend on the
Protocols, and `cmms.testing.conformance.computations_repository` checks that every backend
behaves the same. Semantics are documented on the SQLAlchemy classes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from cmms.duchy.db.records import (
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
from cmms.protocols.stages import AfterTransition


class ComputationsRepositoryInterface(Protocol):
    async def get_token(self, global_computation_id: str) -> ComputationToken: ...

    async def get_token_by_local_id(self, local_computation_id: int) -> ComputationToken: ...

    async def get_token_by_requisition_key(self, key: RequisitionKey) -> ComputationToken: ...

    async def stage_attempts(self, local_computation_id: int) -> list[StageAttempt]: ...

    async def stage_history(self, local_computation_id: int) -> list[StageRecord]: ...

    async def global_ids_in_stages(self, stages: Collection[StageKey]) -> list[str]: ...

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
    ) -> ComputationToken: ...

    async def update_computation_details(
        self,
        token: ComputationToken,
        computation_details: bytes,
        *,
        requisition_details: Mapping[RequisitionKey, bytes] | None = None,
        computation_details_json: str | None = None,
    ) -> ComputationToken: ...

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
    ) -> ComputationToken: ...

    async def finish_computation(
        self,
        token: ComputationToken,
        ending_stage: int,
        reason: CompletedReason,
        *,
        computation_details: bytes | None = None,
        computation_details_json: str | None = None,
    ) -> ComputationToken: ...

    async def claim_work(
        self,
        protocol: int,
        owner: str,
        *,
        lock_duration: timedelta | None = None,
        prioritized_stages: Collection[int] = (),
    ) -> ComputationToken | None: ...

    async def enqueue_computation(
        self,
        token: ComputationToken,
        delay: timedelta = ...,
        *,
        expected_owner: str | None = None,
    ) -> ComputationToken: ...

    async def record_output_blob_path(
        self, token: ComputationToken, blob_id: int, path: str
    ) -> ComputationToken: ...

    async def record_requisition_fulfillment(
        self,
        local_computation_id: int,
        key: RequisitionKey,
        path: str,
        *,
        update_details: Callable[[bytes], bytes] | None = None,
    ) -> ComputationToken: ...

    async def delete_computation(self, local_computation_id: int) -> DeletedComputation: ...

    async def purge_computations(
        self, updated_before: datetime, stages: Collection[StageKey], *, force: bool
    ) -> PurgeResult: ...


class ComputationStatsRepositoryInterface(Protocol):
    async def create_computation_stat(
        self,
        local_computation_id: int,
        stage: int,
        attempt: int,
        metric_name: str,
        metric_value: int,
    ) -> None: ...

    async def stats(self, local_computation_id: int) -> dict[tuple[int, int, str], int]: ...


class ContinuationTokensRepositoryInterface(Protocol):
    async def get_continuation_token(self) -> str: ...

    async def set_continuation_token(self, token: str, last_seen_update_time: datetime) -> None: ...
