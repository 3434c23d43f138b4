"""Conformance suite for the duchy computations repositories (computations, stats, tokens).

Use it by subclassing `ComputationsRepositoryConformance` in a test module and providing a
function-scoped `database_url` fixture that yields the URL of a fresh, empty database (SQLite,
PostgreSQL or Spanner). The suite migrates it, then runs every test against the repositories that
`open_duchy_database` builds on it, through the Protocols of `cmms.duchy.db.interfaces`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import count
from typing import Any

import pytest

from cmms.common.spanner.url import is_spanner_url
from cmms.duchy.db.backends import DuchyDatabase, open_duchy_database, upgrade_duchy_database
from cmms.duchy.db.errors import (
    ComputationAlreadyExistsError,
    ComputationNotFoundError,
    ComputationStatAlreadyExistsError,
    ContinuationTokenInvalidError,
    IllegalStageTransitionError,
    InitialStageInvalidError,
    InvalidArgumentError,
    LockOwnerMismatchError,
    NotAnOutputSlotError,
    OutputsNotWrittenError,
    RequisitionAlreadyExistsError,
    RequisitionNotFoundError,
    StageAttemptNotFoundError,
    StaleVersionError,
    TerminalStageError,
)
from cmms.duchy.db.interfaces import (
    ComputationsRepositoryInterface,
    ComputationStatsRepositoryInterface,
    ContinuationTokensRepositoryInterface,
)
from cmms.duchy.db.records import (
    AttemptEndReason,
    BlobDependency,
    CompletedReason,
    ComputationToken,
    NewRequisition,
    RequisitionKey,
    StageKey,
)
from cmms.protocols.hmss.stages import Stage as Hmss
from cmms.protocols.llv2.stages import Stage as Llv2
from cmms.protocols.stages import AfterTransition, ProtocolType
from cmms.testing.manual_clock import ManualClock

LLV2 = int(ProtocolType.LIQUID_LEGIONS_V2)
HMSS = int(ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE)
MINUTE = timedelta(minutes=1)
QUEUE = AfterTransition.ADD_UNCLAIMED_TO_QUEUE
WAIT = AfterTransition.DO_NOT_ADD_TO_QUEUE
RETAIN = AfterTransition.RETAIN_AND_EXTEND_LOCK


@dataclass
class Harness:
    url: str
    clock: ManualClock
    database: DuchyDatabase
    computations: ComputationsRepositoryInterface
    stats: ComputationStatsRepositoryInterface
    tokens: ContinuationTokensRepositoryInterface
    extra_databases: list[DuchyDatabase] = field(default_factory=list)
    _names: Iterator[int] = field(default_factory=count)

    def another_computations(
        self, id_generator: Callable[[], int] | None = None
    ) -> ComputationsRepositoryInterface:
        """A repository on its own connection to the same database, like another process."""
        # SQL engines get few connections each, so that many of them fit a server's limit.
        options: dict[str, Any] = (
            {} if is_spanner_url(self.url) else {"pool_size": 5, "max_overflow": 0}
        )
        if id_generator is not None:
            options["id_generator"] = id_generator
        database = open_duchy_database(self.url, clock=self.clock, **options)
        self.extra_databases.append(database)
        return database.computations

    def gid(self) -> str:
        return f"gid-{next(self._names)}"

    async def create(
        self,
        protocol: int = LLV2,
        *,
        requisitions: tuple[NewRequisition, ...] = (),
        details: bytes = b"details",
    ) -> ComputationToken:
        return await self.computations.create_computation(
            global_computation_id=self.gid(),
            protocol=protocol,
            computation_details=details,
            requisitions=requisitions,
        )

    async def walk_llv2_to_setup_inputs(self, outputs: int = 2) -> ComputationToken:
        """An LLv2 aggregator computation sitting in WAIT_SETUP_PHASE_INPUTS with empty outputs."""
        repo = self.computations
        token = await self.create()
        token = await repo.advance_stage(
            token, Llv2.WAIT_REQUISITIONS_AND_KEY_SET, after_transition=WAIT
        )
        token = await repo.advance_stage(token, Llv2.CONFIRMATION_PHASE, after_transition=QUEUE)
        return await repo.advance_stage(
            token, Llv2.WAIT_SETUP_PHASE_INPUTS, after_transition=WAIT, output_blob_count=outputs
        )


def requisition(name: str, details: bytes = b"req") -> NewRequisition:
    return NewRequisition(RequisitionKey(name, f"fp-{name}".encode()), details)


class ComputationsRepositoryConformance:
    """Every test a computations repository backend must pass. Subclasses give `database_url`."""

    @pytest.fixture
    async def harness(self, database_url: str) -> AsyncIterator[Harness]:
        await upgrade_duchy_database(database_url)
        clock = ManualClock()
        database = open_duchy_database(database_url, clock=clock)
        harness = Harness(
            url=database_url,
            clock=clock,
            database=database,
            computations=database.computations,
            stats=database.stats,
            tokens=database.continuation_tokens,
        )
        try:
            yield harness
        finally:
            for extra in harness.extra_databases:
                await extra.close()
            await database.close()

    # ------------------------------------------------------------------ create and read

    async def test_create_starts_in_the_initial_stage_and_is_claimable_at_once(
        self, harness: Harness
    ) -> None:
        token = await harness.create(requisitions=(requisition("b"), requisition("a")))
        assert token.stage == Llv2.INITIALIZATION_PHASE
        assert token.protocol == LLV2
        assert token.attempt == 0
        assert token.lock_owner is None
        assert token.lock_expiration_time == harness.clock()
        assert token.local_computation_id != 0
        assert token.blobs == ()
        assert [r.key.external_requisition_id for r in token.requisitions] == ["b", "a"]
        assert [r.requisition_id for r in token.requisitions] == [0, 1]
        assert all(r.path is None for r in token.requisitions)
        assert await harness.computations.get_token(token.global_computation_id) == token
        claimed = await harness.computations.claim_work(LLV2, "mill-1")
        assert claimed is not None
        assert claimed.local_computation_id == token.local_computation_id

    async def test_create_honours_an_explicit_initial_stage_and_refuses_others(
        self, harness: Harness
    ) -> None:
        repo = harness.computations
        token = await repo.create_computation(
            global_computation_id="hmss-1",
            protocol=HMSS,
            computation_details=b"d",
            initial_stage=Hmss.INITIALIZED,
        )
        assert token.stage == Hmss.INITIALIZED
        with pytest.raises(InitialStageInvalidError):
            await repo.create_computation(
                global_computation_id="hmss-2",
                protocol=HMSS,
                computation_details=b"d",
                initial_stage=Hmss.SETUP_PHASE,
            )
        with pytest.raises(ComputationNotFoundError):
            await repo.get_token("hmss-2")

    async def test_create_refuses_bad_arguments(self, harness: Harness) -> None:
        repo = harness.computations
        with pytest.raises(InvalidArgumentError):
            await repo.create_computation(
                global_computation_id="", protocol=LLV2, computation_details=b""
            )
        with pytest.raises(InvalidArgumentError):
            await repo.create_computation(
                global_computation_id="x", protocol=99, computation_details=b""
            )
        with pytest.raises(InvalidArgumentError):
            await repo.create_computation(
                global_computation_id="x",
                protocol=LLV2,
                computation_details=b"",
                requisitions=(requisition("a"), requisition("a")),
            )

    async def test_create_refuses_a_known_global_id(self, harness: Harness) -> None:
        token = await harness.create()
        with pytest.raises(ComputationAlreadyExistsError):
            await harness.computations.create_computation(
                global_computation_id=token.global_computation_id,
                protocol=LLV2,
                computation_details=b"other",
            )
        assert (await harness.computations.get_token(token.global_computation_id)) == token

    async def test_create_refuses_a_requisition_key_of_another_computation(
        self, harness: Harness
    ) -> None:
        first = await harness.create(requisitions=(requisition("shared"),))
        with pytest.raises(RequisitionAlreadyExistsError):
            await harness.computations.create_computation(
                global_computation_id="second",
                protocol=LLV2,
                computation_details=b"",
                requisitions=(requisition("own"), requisition("shared")),
            )
        with pytest.raises(ComputationNotFoundError):
            await harness.computations.get_token("second")
        owner = await harness.computations.get_token_by_requisition_key(requisition("shared").key)
        assert owner.local_computation_id == first.local_computation_id

    async def test_concurrent_creators_of_one_global_id_yield_one_computation(
        self, harness: Harness
    ) -> None:
        repos = [harness.another_computations() for _ in range(5)]
        start = asyncio.Barrier(len(repos))

        async def create(repo: ComputationsRepositoryInterface, n: int) -> str:
            await start.wait()
            try:
                await repo.create_computation(
                    global_computation_id="contested",
                    protocol=LLV2,
                    computation_details=f"creator {n}".encode(),
                    requisitions=(requisition(f"own-{n}"),),
                )
            except ComputationAlreadyExistsError:
                return "exists"
            return "created"

        outcomes = await asyncio.gather(*(create(r, n) for n, r in enumerate(repos)))
        assert sorted(outcomes) == ["created"] + ["exists"] * (len(repos) - 1)
        stored = await harness.computations.get_token("contested")
        winner = outcomes.index("created")
        assert stored.computation_details == f"creator {winner}".encode()
        assert [r.key.external_requisition_id for r in stored.requisitions] == [f"own-{winner}"]

    async def test_a_local_id_collision_is_retried_with_a_new_id(self, harness: Harness) -> None:
        ids = iter([7, 7, 8])
        repo = harness.another_computations(id_generator=lambda: next(ids))
        first = await repo.create_computation(
            global_computation_id="one", protocol=LLV2, computation_details=b""
        )
        second = await repo.create_computation(
            global_computation_id="two", protocol=LLV2, computation_details=b""
        )
        assert (first.local_computation_id, second.local_computation_id) == (7, 8)

    async def test_get_token_by_requisition_key(self, harness: Harness) -> None:
        await harness.create(requisitions=(requisition("x"),))
        token = await harness.create(requisitions=(requisition("y"), requisition("z")))
        found = await harness.computations.get_token_by_requisition_key(requisition("z").key)
        assert found == token
        with pytest.raises(ComputationNotFoundError):
            await harness.computations.get_token_by_requisition_key(
                RequisitionKey("z", b"wrong fingerprint")
            )
        with pytest.raises(ComputationNotFoundError):
            await harness.computations.get_token("nobody")
        with pytest.raises(InvalidArgumentError):
            await harness.computations.get_token("")

    # ------------------------------------------------------------------ versions

    async def test_versions_strictly_increase_while_the_clock_stands_still(
        self, harness: Harness
    ) -> None:
        repo = harness.computations
        token = await harness.create()
        versions = [token.version]
        for n in range(3):
            token = await repo.update_computation_details(token, f"v{n}".encode())
            versions.append(token.version)
        assert versions == sorted(set(versions))
        assert token.computation_details == b"v2"

    async def test_a_stale_token_is_refused_with_stale_version(self, harness: Harness) -> None:
        repo = harness.computations
        stale = await harness.create()
        fresh = await repo.update_computation_details(stale, b"new")
        with pytest.raises(StaleVersionError) as caught:
            await repo.update_computation_details(stale, b"lost update")
        assert caught.value.status == "ABORTED"
        assert caught.value.token_version == stale.version
        assert caught.value.version == fresh.version
        with pytest.raises(StaleVersionError):
            await repo.advance_stage(
                stale, Llv2.WAIT_REQUISITIONS_AND_KEY_SET, after_transition=WAIT
            )
        with pytest.raises(StaleVersionError):
            await repo.enqueue_computation(stale)
        with pytest.raises(StaleVersionError):
            await repo.finish_computation(stale, Llv2.COMPLETE, CompletedReason.FAILED)
        assert (await repo.get_token(stale.global_computation_id)) == fresh

    async def test_concurrent_writers_with_one_token_only_one_wins(self, harness: Harness) -> None:
        token = await harness.create()
        repos = [harness.another_computations() for _ in range(5)]
        start = asyncio.Barrier(len(repos))

        async def write(repo: ComputationsRepositoryInterface, n: int) -> bool:
            await start.wait()
            try:
                await repo.update_computation_details(token, f"writer {n}".encode())
            except StaleVersionError:
                return False
            return True

        outcomes = await asyncio.gather(*(write(r, n) for n, r in enumerate(repos)))
        assert sum(outcomes) == 1
        winner = outcomes.index(True)
        stored = await harness.computations.get_token(token.global_computation_id)
        assert stored.computation_details == f"writer {winner}".encode()

    # ------------------------------------------------------------------ update details

    async def test_update_details_replaces_details_of_named_requisitions(
        self, harness: Harness
    ) -> None:
        repo = harness.computations
        token = await harness.create(requisitions=(requisition("a"), requisition("b")))
        other = await harness.create(requisitions=(requisition("c"),))
        token = await repo.update_computation_details(
            token, b"new", requisition_details={requisition("b").key: b"b2"}
        )
        assert token.computation_details == b"new"
        assert [r.details for r in token.requisitions] == [b"req", b"b2"]
        with pytest.raises(RequisitionNotFoundError):
            await repo.update_computation_details(
                token, b"x", requisition_details={requisition("c").key: b"not yours"}
            )
        unchanged = await repo.get_token(other.global_computation_id)
        assert unchanged.requisitions[0].details == b"req"
        assert (await repo.get_token(token.global_computation_id)).computation_details == b"new"

    # ------------------------------------------------------------------ advance

    async def test_advance_follows_the_stage_table(self, harness: Harness) -> None:
        repo = harness.computations
        token = await harness.create()
        with pytest.raises(IllegalStageTransitionError):
            await repo.advance_stage(token, Llv2.SETUP_PHASE, after_transition=QUEUE)
        with pytest.raises(InvalidArgumentError):
            await repo.advance_stage(token, 77, after_transition=QUEUE)
        with pytest.raises(InvalidArgumentError):
            await repo.advance_stage(
                token, Llv2.WAIT_REQUISITIONS_AND_KEY_SET, after_transition=AfterTransition(0)
            )
        assert (await repo.get_token(token.global_computation_id)) == token
        advanced = await repo.advance_stage(
            token, Llv2.WAIT_REQUISITIONS_AND_KEY_SET, after_transition=WAIT, stage_details=b"sd"
        )
        assert advanced.stage == Llv2.WAIT_REQUISITIONS_AND_KEY_SET
        assert advanced.stage_details == b"sd"
        history = await repo.stage_history(token.local_computation_id)
        assert [(s.stage, s.previous_stage, s.following_stage) for s in history] == [
            (Llv2.INITIALIZATION_PHASE, None, Llv2.WAIT_REQUISITIONS_AND_KEY_SET),
            (Llv2.WAIT_REQUISITIONS_AND_KEY_SET, Llv2.INITIALIZATION_PHASE, None),
        ]
        assert history[0].end_time == harness.clock()
        assert history[1].end_time is None

    async def test_advance_into_a_terminal_stage_is_refused(self, harness: Harness) -> None:
        repo = harness.computations
        token = await repo.create_computation(
            global_computation_id="h", protocol=HMSS, computation_details=b""
        )
        token = await repo.advance_stage(
            token, Hmss.WAIT_ON_AGGREGATION_INPUT, after_transition=WAIT
        )
        token = await repo.advance_stage(token, Hmss.AGGREGATION_PHASE, after_transition=QUEUE)
        with pytest.raises(IllegalStageTransitionError):
            await repo.advance_stage(token, Hmss.COMPLETE, after_transition=QUEUE)

    async def test_advance_needs_every_output_written(self, harness: Harness) -> None:
        repo = harness.computations
        token = await harness.walk_llv2_to_setup_inputs(outputs=2)
        assert [(b.blob_id, b.dependency, b.path) for b in token.blobs] == [
            (0, BlobDependency.OUTPUT, None),
            (1, BlobDependency.OUTPUT, None),
        ]
        token = await repo.record_output_blob_path(token, 1, "g/WAIT_SETUP_PHASE_INPUTS/1")
        with pytest.raises(OutputsNotWrittenError):
            await repo.advance_stage(
                token, Llv2.SETUP_PHASE, after_transition=QUEUE, output_blob_count=1
            )
        token = await repo.record_output_blob_path(token, 0, "g/WAIT_SETUP_PHASE_INPUTS/0")
        assert token.all_outputs_written()
        token = await repo.advance_stage(
            token,
            Llv2.SETUP_PHASE,
            after_transition=QUEUE,
            input_blob_paths=[p for p in token.output_paths() if p],
            output_blob_count=1,
        )
        assert token.stage == Llv2.SETUP_PHASE

    async def test_advance_lays_out_inputs_then_pass_throughs_then_outputs(
        self, harness: Harness
    ) -> None:
        repo = harness.computations
        token = await harness.walk_llv2_to_setup_inputs(outputs=0)
        token = await repo.advance_stage(
            token,
            Llv2.SETUP_PHASE,
            after_transition=QUEUE,
            input_blob_paths=["in/0", "in/1"],
            pass_through_blob_paths=["pass/0"],
            output_blob_count=2,
        )
        assert [(b.blob_id, b.dependency, b.path) for b in token.blobs] == [
            (0, BlobDependency.INPUT, "in/0"),
            (1, BlobDependency.INPUT, "in/1"),
            (2, BlobDependency.PASS_THROUGH, "pass/0"),
            (3, BlobDependency.OUTPUT, None),
            (4, BlobDependency.OUTPUT, None),
        ]
        assert token.output_paths() == ["pass/0", None, None]
        with pytest.raises(NotAnOutputSlotError):
            await repo.record_output_blob_path(token, 2, "overwrite/pass")
        with pytest.raises(NotAnOutputSlotError):
            await repo.record_output_blob_path(token, 0, "overwrite/input")
        with pytest.raises(NotAnOutputSlotError):
            await repo.record_output_blob_path(token, 9, "nowhere")
        with pytest.raises(InvalidArgumentError):
            await repo.record_output_blob_path(token, 3, "")
        token = await repo.record_output_blob_path(token, 4, "out/4")
        assert token.output_paths() == ["pass/0", None, "out/4"]

    async def test_after_transition_decides_lock_and_attempt(self, harness: Harness) -> None:
        repo = harness.computations
        now = harness.clock()
        token = await harness.create()
        claimed = await repo.claim_work(LLV2, "mill-1", lock_duration=MINUTE)
        assert claimed is not None and claimed.attempt == 1
        waiting = await repo.advance_stage(
            claimed, Llv2.WAIT_REQUISITIONS_AND_KEY_SET, after_transition=WAIT
        )
        assert (waiting.lock_owner, waiting.lock_expiration_time, waiting.attempt) == (
            None,
            None,
            1,
        )
        queued = await repo.advance_stage(waiting, Llv2.CONFIRMATION_PHASE, after_transition=QUEUE)
        assert (queued.lock_owner, queued.lock_expiration_time, queued.attempt) == (None, now, 0)
        reclaimed = await repo.claim_work(LLV2, "mill-2", lock_duration=MINUTE)
        assert reclaimed is not None and reclaimed.stage == Llv2.CONFIRMATION_PHASE
        retained = await repo.advance_stage(
            reclaimed, Llv2.WAIT_TO_START, after_transition=RETAIN, lock_extension=3 * MINUTE
        )
        assert retained.lock_owner == "mill-2"
        assert retained.lock_expiration_time == now + 3 * MINUTE
        assert retained.attempt == 1
        attempts = {
            (a.stage, a.attempt): a.reason_ended
            for a in await repo.stage_attempts(token.local_computation_id)
        }
        assert attempts == {
            (Llv2.INITIALIZATION_PHASE, 1): AttemptEndReason.SUCCEEDED,
            (Llv2.WAIT_REQUISITIONS_AND_KEY_SET, 1): AttemptEndReason.SUCCEEDED,
            (Llv2.CONFIRMATION_PHASE, 1): AttemptEndReason.SUCCEEDED,
            (Llv2.WAIT_TO_START, 1): None,
        }

    async def test_advancing_a_never_claimed_stage_has_no_attempt_to_close(
        self, harness: Harness
    ) -> None:
        repo = harness.computations
        token = await harness.create()
        assert token.attempt == 0
        token = await repo.advance_stage(
            token, Llv2.WAIT_REQUISITIONS_AND_KEY_SET, after_transition=WAIT
        )
        assert token.stage == Llv2.WAIT_REQUISITIONS_AND_KEY_SET
        attempts = await repo.stage_attempts(token.local_computation_id)
        assert [(a.stage, a.attempt, a.end_time) for a in attempts] == [
            (Llv2.WAIT_REQUISITIONS_AND_KEY_SET, 1, None)
        ]

    # ------------------------------------------------------------------ finish

    async def test_finish_from_a_wait_stage_closes_every_open_attempt(
        self, harness: Harness
    ) -> None:
        repo = harness.computations
        await harness.create()
        claimed = await repo.claim_work(LLV2, "mill-1", lock_duration=MINUTE)
        assert claimed is not None
        # Enqueue leaves attempt 1 open; the next claim opens attempt 2 without closing it.
        requeued = await repo.enqueue_computation(claimed, expected_owner="mill-1")
        again = await repo.claim_work(LLV2, "mill-2", lock_duration=MINUTE)
        assert again is not None and again.attempt == 2
        assert requeued.local_computation_id == again.local_computation_id
        harness.clock.advance(MINUTE / 2)
        finished = await repo.finish_computation(
            again, Llv2.COMPLETE, CompletedReason.FAILED, computation_details=b"ended"
        )
        assert finished.stage == Llv2.COMPLETE
        assert (finished.lock_owner, finished.lock_expiration_time) == (None, None)
        assert finished.computation_details == b"ended"
        attempts = {
            (a.stage, a.attempt): (a.reason_ended, a.end_time)
            for a in await repo.stage_attempts(finished.local_computation_id)
        }
        assert attempts == {
            (Llv2.INITIALIZATION_PHASE, 1): (AttemptEndReason.CANCELLED, harness.clock()),
            (Llv2.INITIALIZATION_PHASE, 2): (AttemptEndReason.ERROR, harness.clock()),
        }
        assert await repo.claim_work(LLV2, "mill-3") is None

    async def test_finish_checks_stage_and_reason(self, harness: Harness) -> None:
        repo = harness.computations
        token = await harness.create()
        with pytest.raises(InvalidArgumentError):
            await repo.finish_computation(token, Llv2.SETUP_PHASE, CompletedReason.SUCCEEDED)
        with pytest.raises(InvalidArgumentError):
            await repo.finish_computation(token, Llv2.COMPLETE, CompletedReason.UNSPECIFIED)
        finished = await repo.finish_computation(token, Llv2.COMPLETE, CompletedReason.CANCELED)
        assert finished.computation_details == token.computation_details
        # Finishing an ended computation again updates its terminal stage row in place.
        harness.clock.advance(MINUTE)
        again = await repo.finish_computation(finished, Llv2.COMPLETE, CompletedReason.FAILED)
        assert again.stage == Llv2.COMPLETE and again.version > finished.version
        history = await repo.stage_history(token.local_computation_id)
        assert [s.stage for s in history] == [Llv2.INITIALIZATION_PHASE, Llv2.COMPLETE]
        assert history[-1].end_time == harness.clock()

    # ------------------------------------------------------------------ claim

    async def test_claim_locks_for_the_owner_and_opens_an_attempt(self, harness: Harness) -> None:
        repo = harness.computations
        assert await repo.claim_work(LLV2, "mill-1") is None
        await harness.create(protocol=HMSS)
        assert await repo.claim_work(LLV2, "mill-1") is None
        token = await harness.create()
        claimed = await repo.claim_work(LLV2, "mill-1", lock_duration=2 * MINUTE)
        assert claimed is not None
        assert claimed.local_computation_id == token.local_computation_id
        assert claimed.lock_owner == "mill-1"
        assert claimed.lock_expiration_time == harness.clock() + 2 * MINUTE
        assert claimed.attempt == 1
        assert claimed.version > token.version
        assert await repo.claim_work(LLV2, "mill-2") is None
        with pytest.raises(InvalidArgumentError):
            await repo.claim_work(LLV2, "")
        with pytest.raises(InvalidArgumentError):
            await repo.claim_work(LLV2, "mill-2", lock_duration=timedelta(0))

    async def test_an_expired_lock_is_reclaimed_and_overwritten(self, harness: Harness) -> None:
        repo = harness.computations
        await harness.create()
        first = await repo.claim_work(LLV2, "crashed-mill", lock_duration=MINUTE)
        assert first is not None
        harness.clock.advance(MINUTE - timedelta(microseconds=1))
        assert await repo.claim_work(LLV2, "mill-2") is None
        harness.clock.advance(timedelta(microseconds=1))
        second = await repo.claim_work(LLV2, "mill-2", lock_duration=MINUTE)
        assert second is not None
        assert second.local_computation_id == first.local_computation_id
        assert (second.lock_owner, second.attempt) == ("mill-2", 2)
        attempts = await repo.stage_attempts(first.local_computation_id)
        assert [(a.attempt, a.reason_ended, a.end_time) for a in attempts] == [
            (1, AttemptEndReason.LOCK_OVERWRITTEN, harness.clock()),
            (2, None, None),
        ]
        with pytest.raises(StaleVersionError):
            await repo.advance_stage(
                first, Llv2.WAIT_REQUISITIONS_AND_KEY_SET, after_transition=WAIT
            )

    async def test_prioritized_stages_come_first_then_oldest(self, harness: Harness) -> None:
        repo = harness.computations
        old_queued = await harness.create()
        old_queued = await repo.advance_stage(
            old_queued, Llv2.WAIT_REQUISITIONS_AND_KEY_SET, after_transition=WAIT
        )
        old_queued = await repo.advance_stage(
            old_queued, Llv2.CONFIRMATION_PHASE, after_transition=QUEUE
        )
        harness.clock.advance(MINUTE)
        new_a = await harness.create()
        harness.clock.advance(MINUTE)
        new_b = await harness.create()
        order = []
        while (
            claimed := await repo.claim_work(
                LLV2, "mill", prioritized_stages=[Llv2.INITIALIZATION_PHASE]
            )
        ) is not None:
            order.append(claimed.local_computation_id)
        assert order == [
            new_a.local_computation_id,
            new_b.local_computation_id,
            old_queued.local_computation_id,
        ]

    async def test_claim_order_is_creation_time_not_enqueue_time(self, harness: Harness) -> None:
        repo = harness.computations
        older = await harness.create()
        harness.clock.advance(MINUTE)
        newer = await harness.create()
        claimed = await repo.claim_work(LLV2, "mill", lock_duration=MINUTE)
        assert claimed is not None and claimed.local_computation_id == older.local_computation_id
        # Requeued after the newer one was queued, the older computation still goes first.
        harness.clock.advance(MINUTE)
        await repo.enqueue_computation(claimed, expected_owner="mill")
        harness.clock.advance(MINUTE)
        order = []
        while (token := await repo.claim_work(LLV2, "mill")) is not None:
            order.append(token.local_computation_id)
        assert order == [older.local_computation_id, newer.local_computation_id]

    async def test_a_delayed_enqueue_is_not_claimable_before_its_time(
        self, harness: Harness
    ) -> None:
        repo = harness.computations
        await harness.create()
        claimed = await repo.claim_work(LLV2, "mill-1", lock_duration=10 * MINUTE)
        assert claimed is not None
        queued = await repo.enqueue_computation(claimed, 2 * MINUTE, expected_owner="mill-1")
        assert queued.lock_owner is None
        assert queued.lock_expiration_time == harness.clock() + 2 * MINUTE
        harness.clock.advance(2 * MINUTE - timedelta(seconds=1))
        assert await repo.claim_work(LLV2, "mill-2") is None
        harness.clock.advance(timedelta(seconds=1))
        later = await repo.claim_work(LLV2, "mill-2")
        assert later is not None and later.attempt == 2

    async def test_enqueue_checks_owner_stage_and_delay(self, harness: Harness) -> None:
        repo = harness.computations
        await harness.create()
        claimed = await repo.claim_work(LLV2, "mill-1")
        assert claimed is not None
        with pytest.raises(LockOwnerMismatchError) as caught:
            await repo.enqueue_computation(claimed, expected_owner="mill-2")
        assert caught.value.status == "ABORTED"
        with pytest.raises(LockOwnerMismatchError):
            await repo.enqueue_computation(claimed)
        with pytest.raises(InvalidArgumentError):
            await repo.enqueue_computation(claimed, -MINUTE, expected_owner="mill-1")
        ended = await repo.finish_computation(claimed, Llv2.COMPLETE, CompletedReason.SUCCEEDED)
        with pytest.raises(TerminalStageError):
            await repo.enqueue_computation(ended)
        # Nobody holds an unclaimed computation's lock, so any expected owner is fine.
        fresh = await harness.create()
        waiting = await repo.advance_stage(
            fresh, Llv2.WAIT_REQUISITIONS_AND_KEY_SET, after_transition=WAIT
        )
        requeued = await repo.enqueue_computation(waiting, expected_owner="anyone")
        assert requeued.lock_expiration_time == harness.clock()

    async def test_many_concurrent_claimers_never_claim_a_computation_twice(
        self, harness: Harness
    ) -> None:
        computations, claimers = 20, 25
        created = {(await harness.create()).local_computation_id for _ in range(computations)}
        # Several engines, like several mill processes, each with its own connections.
        repos = [harness.another_computations() for _ in range(5)]
        start = asyncio.Barrier(claimers)

        async def claimer(n: int) -> list[tuple[int, str]]:
            repo, owner = repos[n % len(repos)], f"mill-{n}"
            await start.wait()
            mine = []
            while (token := await repo.claim_work(LLV2, owner, lock_duration=MINUTE)) is not None:
                assert token.lock_owner == owner
                mine.append((token.local_computation_id, owner))
            return mine

        results = await asyncio.gather(*(claimer(n) for n in range(claimers)))
        claims = [claim for mine in results for claim in mine]
        claimed_ids = [local_id for local_id, _ in claims]
        assert len(claimed_ids) == len(set(claimed_ids)), "a computation was claimed twice"
        assert set(claimed_ids) == created
        for local_id, owner in claims:
            token = await harness.computations.get_token_by_local_id(local_id)
            assert (token.lock_owner, token.attempt) == (owner, 1)

    # ------------------------------------------------------------------ requisitions

    async def test_requisition_fulfilment_skips_the_version_check(self, harness: Harness) -> None:
        repo = harness.computations
        token = await harness.create(requisitions=(requisition("a"), requisition("b")))
        other = await harness.create(requisitions=(requisition("c"),))
        await repo.update_computation_details(token, b"moved on")
        fulfilled = await repo.record_requisition_fulfillment(
            token.local_computation_id,
            requisition("b").key,
            "gid/b",
            update_details=lambda old: old + b"+fulfilled",
        )
        assert [(r.path, r.details) for r in fulfilled.requisitions] == [
            (None, b"req"),
            ("gid/b", b"req+fulfilled"),
        ]
        assert fulfilled.version > token.version
        with pytest.raises(RequisitionNotFoundError):
            await repo.record_requisition_fulfillment(
                token.local_computation_id, requisition("c").key, "gid/c"
            )
        with pytest.raises(ComputationNotFoundError):
            await repo.record_requisition_fulfillment(12345, requisition("a").key, "x")
        with pytest.raises(InvalidArgumentError):
            await repo.record_requisition_fulfillment(
                token.local_computation_id, requisition("a").key, ""
            )
        assert (await repo.get_token(other.global_computation_id)).requisitions[0].path is None

    # ------------------------------------------------------------------ delete and purge

    async def test_delete_returns_blob_paths_and_removes_everything(self, harness: Harness) -> None:
        repo = harness.computations
        token = await harness.walk_llv2_to_setup_inputs(outputs=1)
        token = await repo.record_output_blob_path(token, 0, "g/WAIT_SETUP_PHASE_INPUTS/0")
        with_requisition = await harness.create(requisitions=(requisition("r"),))
        with_requisition = await repo.record_requisition_fulfillment(
            with_requisition.local_computation_id, requisition("r").key, "g2/r"
        )
        claimed = await repo.claim_work(LLV2, "mill")
        assert claimed is not None
        await harness.stats.create_computation_stat(
            claimed.local_computation_id, claimed.stage, claimed.attempt, "bytes", 1
        )
        deleted = await repo.delete_computation(token.local_computation_id)
        assert deleted.existed
        assert deleted.computation_blob_paths == ("g/WAIT_SETUP_PHASE_INPUTS/0",)
        deleted_other = await repo.delete_computation(with_requisition.local_computation_id)
        assert deleted_other.requisition_blob_paths == ("g2/r",)
        for gone in (token, with_requisition):
            with pytest.raises(ComputationNotFoundError):
                await repo.get_token(gone.global_computation_id)
            assert await repo.stage_attempts(gone.local_computation_id) == []
            assert await harness.stats.stats(gone.local_computation_id) == {}
        nothing = await repo.delete_computation(token.local_computation_id)
        assert not nothing.existed and nothing.computation_blob_paths == ()
        # The requisition key is free again once its computation is gone.
        await harness.create(requisitions=(requisition("r"),))

    async def test_purge_selects_old_terminal_computations_of_one_protocol(
        self, harness: Harness
    ) -> None:
        repo = harness.computations
        complete = [StageKey(LLV2, Llv2.COMPLETE)]
        with pytest.raises(InvalidArgumentError):
            await repo.purge_computations(harness.clock(), [], force=False)
        with pytest.raises(InvalidArgumentError):
            await repo.purge_computations(
                harness.clock(), [*complete, StageKey(HMSS, Hmss.COMPLETE)], force=False
            )
        with pytest.raises(InvalidArgumentError):
            await repo.purge_computations(
                harness.clock(), [StageKey(LLV2, Llv2.SETUP_PHASE)], force=False
            )
        waiting = await harness.walk_llv2_to_setup_inputs(outputs=1)
        waiting = await repo.record_output_blob_path(waiting, 0, "old/out/0")
        old = await repo.finish_computation(waiting, Llv2.COMPLETE, CompletedReason.SUCCEEDED)
        still_running = await harness.create()
        cutoff = harness.clock()
        harness.clock.advance(MINUTE)
        recent = await repo.finish_computation(
            await harness.create(), Llv2.COMPLETE, CompletedReason.SUCCEEDED
        )
        dry = await repo.purge_computations(cutoff, complete, force=False)
        assert (dry.purge_count, dry.global_ids, dry.deleted) == (
            1,
            (old.global_computation_id,),
            False,
        )
        assert dry.computation_blob_paths == ("old/out/0",)
        assert await repo.get_token(old.global_computation_id) == old
        forced = await repo.purge_computations(cutoff, complete, force=True)
        assert (forced.purge_count, forced.deleted) == (1, True)
        assert forced.computation_blob_paths == ("old/out/0",)
        with pytest.raises(ComputationNotFoundError):
            await repo.get_token(old.global_computation_id)
        for kept in (still_running, recent):
            await repo.get_token(kept.global_computation_id)

    async def test_global_ids_in_stages(self, harness: Harness) -> None:
        repo = harness.computations
        first = await harness.create()
        second = await harness.walk_llv2_to_setup_inputs()
        await harness.create(protocol=HMSS)
        assert await repo.global_ids_in_stages(
            [
                StageKey(LLV2, Llv2.INITIALIZATION_PHASE),
                StageKey(LLV2, Llv2.WAIT_SETUP_PHASE_INPUTS),
            ]
        ) == sorted([first.global_computation_id, second.global_computation_id])
        assert await repo.global_ids_in_stages([StageKey(LLV2, Llv2.COMPLETE)]) == []
        with pytest.raises(InvalidArgumentError):
            await repo.global_ids_in_stages(
                [StageKey(LLV2, Llv2.COMPLETE), StageKey(HMSS, Hmss.COMPLETE)]
            )

    # ------------------------------------------------------------------ stats

    async def test_stats_attach_to_an_existing_attempt(self, harness: Harness) -> None:
        stats = harness.stats
        token = await harness.create()
        with pytest.raises(StageAttemptNotFoundError):
            await stats.create_computation_stat(
                token.local_computation_id, token.stage, 1, "crypto_cpu_duration_ms", 5
            )
        claimed = await harness.computations.claim_work(LLV2, "mill")
        assert claimed is not None
        await stats.create_computation_stat(
            claimed.local_computation_id,
            claimed.stage,
            claimed.attempt,
            "crypto_cpu_duration_ms",
            5,
        )
        with pytest.raises(ComputationStatAlreadyExistsError):
            await stats.create_computation_stat(
                claimed.local_computation_id,
                claimed.stage,
                claimed.attempt,
                "crypto_cpu_duration_ms",
                6,
            )
        with pytest.raises(InvalidArgumentError):
            await stats.create_computation_stat(0, claimed.stage, 1, "m", 1)
        with pytest.raises(InvalidArgumentError):
            await stats.create_computation_stat(claimed.local_computation_id, 0, 1, "m", 1)
        with pytest.raises(InvalidArgumentError):
            await stats.create_computation_stat(
                claimed.local_computation_id, claimed.stage, 1, "", 1
            )
        assert await stats.stats(claimed.local_computation_id) == {
            (claimed.stage, 1, "crypto_cpu_duration_ms"): 5
        }

    # ------------------------------------------------------------------ continuation token

    async def test_continuation_token_only_moves_forward(self, harness: Harness) -> None:
        tokens = harness.tokens
        t0 = harness.clock()
        assert await tokens.get_continuation_token() == ""
        await tokens.set_continuation_token("first", t0)
        assert await tokens.get_continuation_token() == "first"
        await tokens.set_continuation_token("same time", t0)
        assert await tokens.get_continuation_token() == "same time"
        with pytest.raises(ContinuationTokenInvalidError) as caught:
            await tokens.set_continuation_token("older", t0 - timedelta(microseconds=1))
        assert caught.value.status == "FAILED_PRECONDITION"
        assert await tokens.get_continuation_token() == "same time"
        await tokens.set_continuation_token("newer", t0 + MINUTE)
        assert await tokens.get_continuation_token() == "newer"
