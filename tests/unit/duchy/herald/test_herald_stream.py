"""The streaming loop: checkpointing, resumption, ordering, concurrency, reconnection, stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest

from cmms.api.system.v1 import computation_pb2
from cmms.duchy.herald.herald import Herald, HeraldStreamError, StreamPolicy
from cmms.duchy.herald.processor import Outcome
from cmms.duchy.herald.retry import Backoff, Pacer
from cmms.duchy.herald.runner import HeraldOptions, assemble_herald
from cmms.duchy.herald.starters.common import DuchyContext
from cmms.testing.herald import (
    WORKER1,
    ComputationBuilder,
    FakeKingdom,
    FakeLocalComputations,
    FakeTokenStore,
    RecordingSleep,
    setup_config,
)

Computation = computation_pb2.Computation


@dataclass
class GatedProcessor:
    """Processes a computation only once the test opens its gate; records what it saw."""

    started: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)
    seen: list[tuple[str, int]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    auto_open: bool = False

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    async def process(self, computation: Computation) -> Outcome:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self.seen.append((computation.name, computation.state))
        await self.started.put(computation.name)
        try:
            if not self.auto_open:
                await self.gate(computation.name).wait()
                self.gate(computation.name).clear()
        finally:
            self.in_flight -= 1
        return Outcome.DONE


@dataclass
class Observed:
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)

    def __call__(self, computation: Computation, outcome: Outcome) -> None:
        self.queue.put_nowait(computation.name)

    async def next(self) -> str:
        return await self.queue.get()


def computation(
    n: int, state: int = computation_pb2.Computation.PENDING_COMPUTATION
) -> Computation:
    return ComputationBuilder(computation_id=f"c{n}").build("liquid_legions_v2", state)


class Running:
    def __init__(
        self,
        kingdom: FakeKingdom,
        tokens: FakeTokenStore,
        processor: GatedProcessor,
        *,
        max_concurrency: int = 5,
        attempts: int = 3,
    ) -> None:
        self.sleep = RecordingSleep()
        self.observed = Observed()
        self.stop = asyncio.Event()
        self.herald = Herald(
            kingdom,
            tokens,
            processor,
            policy=StreamPolicy(
                max_concurrency=max_concurrency, reconnect=Backoff(max_attempts=attempts)
            ),
            pacer=Pacer(Backoff(max_attempts=attempts), self.sleep, lambda: 0.5),
            observer=self.observed,
        )
        self.task: asyncio.Task[None] = asyncio.create_task(self.herald.run(self.stop))

    async def stopped(self) -> None:
        self.stop.set()
        await self.task


@pytest.fixture
async def kingdom() -> AsyncIterator[FakeKingdom]:
    fake = FakeKingdom(hold_open=True)
    yield fake
    await fake.end_streams()


async def test_token_is_stored_only_once_everything_before_it_is_processed(
    kingdom: FakeKingdom,
) -> None:
    tokens = FakeTokenStore()
    processor = GatedProcessor()
    t1 = await kingdom.publish(computation(1))
    t2 = await kingdom.publish(computation(2))
    t3 = await kingdom.publish(computation(3))
    running = Running(kingdom, tokens, processor)
    assert {await processor.started.get() for _ in range(3)} == {
        "computations/c1",
        "computations/c2",
        "computations/c3",
    }

    processor.gate("computations/c2").set()
    assert await running.observed.next() == "computations/c2"
    assert tokens.history == []  # c1 is still in flight

    processor.gate("computations/c1").set()
    assert await running.observed.next() == "computations/c1"
    assert tokens.history == [t2]  # c1 and c2 done; c3 not

    processor.gate("computations/c3").set()
    assert await running.observed.next() == "computations/c3"
    assert tokens.history == [t2, t3]
    assert t1 not in tokens.history  # superseded before it could be stored alone
    await running.stopped()


async def test_restart_resumes_after_the_stored_token_without_loss_or_duplicates(
    kingdom: FakeKingdom,
) -> None:
    tokens = FakeTokenStore()
    processor = GatedProcessor()
    await kingdom.publish(computation(1))
    await kingdom.publish(computation(2))
    first = Running(kingdom, tokens, processor)
    await processor.started.get()
    await processor.started.get()
    processor.gate("computations/c1").set()
    assert await first.observed.next() == "computations/c1"
    # The process dies while c2 is being processed.
    first.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first.task
    await kingdom.publish(computation(3))

    processor.auto_open = True
    processor.seen.clear()
    second = Running(kingdom, tokens, processor)
    assert {await second.observed.next() for _ in range(2)} == {
        "computations/c2",
        "computations/c3",
    }
    await second.stopped()
    # c1 is not processed again, c2 (unfinished) and c3 (new) are processed once each.
    assert sorted(name for name, _ in processor.seen) == ["computations/c2", "computations/c3"]
    assert kingdom.stream_requests[-1] == tokens.history[0]


async def test_updates_of_one_computation_are_processed_in_order(kingdom: FakeKingdom) -> None:
    processor = GatedProcessor()
    await kingdom.publish(computation(1, computation_pb2.Computation.PENDING_REQUISITION_PARAMS))
    await kingdom.publish(computation(1, computation_pb2.Computation.PENDING_COMPUTATION))
    await kingdom.publish(computation(2))
    running = Running(kingdom, FakeTokenStore(), processor)
    started = {await processor.started.get(), await processor.started.get()}
    # The second update of c1 waits for the first; c2 runs meanwhile.
    assert started == {"computations/c1", "computations/c2"}
    assert processor.started.empty()
    processor.gate("computations/c1").set()
    assert await running.observed.next() == "computations/c1"
    assert await processor.started.get() == "computations/c1"
    processor.gate("computations/c1").set()
    processor.gate("computations/c2").set()
    assert {await running.observed.next(), await running.observed.next()} == {
        "computations/c1",
        "computations/c2",
    }
    states = [state for name, state in processor.seen if name == "computations/c1"]
    assert states == [
        computation_pb2.Computation.PENDING_REQUISITION_PARAMS,
        computation_pb2.Computation.PENDING_COMPUTATION,
    ]
    await running.stopped()


async def test_concurrency_is_bounded(kingdom: FakeKingdom) -> None:
    processor = GatedProcessor()
    for n in range(5):
        await kingdom.publish(computation(n))
    running = Running(kingdom, FakeTokenStore(), processor, max_concurrency=2)
    first = {await processor.started.get(), await processor.started.get()}
    assert processor.started.empty() and processor.in_flight == 2
    for name in first:
        processor.gate(name).set()
    processor.auto_open = True
    for _ in range(5):
        await running.observed.next()
    assert processor.most_in_flight == 2
    await running.stopped()


async def test_stop_lets_in_flight_work_finish_and_records_it(kingdom: FakeKingdom) -> None:
    tokens = FakeTokenStore()
    processor = GatedProcessor()
    token = await kingdom.publish(computation(1))
    running = Running(kingdom, tokens, processor)
    await processor.started.get()
    running.stop.set()
    processor.gate("computations/c1").set()
    await running.task
    assert tokens.token == token


async def test_stream_errors_reconnect_with_backoff_from_the_last_position() -> None:
    kingdom = FakeKingdom()  # each stream ends after what is there
    tokens = FakeTokenStore()
    processor = GatedProcessor(auto_open=True)
    token = await kingdom.publish(computation(1))
    kingdom.faults.add("StreamActiveComputations.next", grpc.StatusCode.UNAVAILABLE)
    kingdom.faults.add("StreamActiveComputations", grpc.StatusCode.DEADLINE_EXCEEDED)
    running = Running(kingdom, tokens, processor)
    assert await running.observed.next() == "computations/c1"
    await kingdom.publish(computation(2))
    assert await running.observed.next() == "computations/c2"
    await running.stopped()
    # 1st call fails at once, 2nd mid-stream, 3rd delivers c1, then clean reconnects from c1.
    assert kingdom.stream_requests[:4] == ["", "", "", token]
    assert running.sleep.delays[:2] == [0.5, 0.75]
    assert all(delay == 1.0 for delay in running.sleep.delays[2:])


async def test_too_many_stream_failures_in_a_row_end_the_herald() -> None:
    kingdom = FakeKingdom()
    kingdom.faults.add("StreamActiveComputations", grpc.StatusCode.UNAVAILABLE, times=3)
    running = Running(kingdom, FakeTokenStore(), GatedProcessor(), attempts=3)
    with pytest.raises(HeraldStreamError, match="3 times"):
        await running.task


async def test_a_permanent_stream_error_ends_the_herald() -> None:
    kingdom = FakeKingdom()
    kingdom.faults.add("StreamActiveComputations", grpc.StatusCode.PERMISSION_DENIED)
    running = Running(kingdom, FakeTokenStore(), GatedProcessor())
    with pytest.raises(HeraldStreamError, match="PERMISSION_DENIED"):
        await running.task


async def test_an_older_stored_token_conflict_is_ignored(kingdom: FakeKingdom) -> None:
    tokens = FakeTokenStore()
    tokens.faults.add("SetContinuationToken", grpc.StatusCode.FAILED_PRECONDITION)
    await kingdom.publish(computation(1))
    t2 = await kingdom.publish(computation(2))
    processor = GatedProcessor()
    running = Running(kingdom, tokens, processor)
    await processor.started.get()
    processor.gate("computations/c1").set()
    await running.observed.next()
    assert tokens.history == []
    processor.gate("computations/c2").set()
    await running.observed.next()
    assert tokens.history == [t2]
    await running.stopped()


async def test_a_token_that_cannot_be_stored_ends_the_herald(kingdom: FakeKingdom) -> None:
    tokens = FakeTokenStore()
    tokens.faults.add("SetContinuationToken", grpc.StatusCode.INVALID_ARGUMENT)
    await kingdom.publish(computation(1))
    running = Running(kingdom, tokens, GatedProcessor(auto_open=True))
    with pytest.raises(Exception, match="INVALID_ARGUMENT"):
        await running.task


async def test_the_stored_token_is_where_streaming_starts(kingdom: FakeKingdom) -> None:
    await kingdom.publish(computation(1))
    t2 = await kingdom.publish(computation(2))
    await kingdom.publish(computation(3))
    processor = GatedProcessor(auto_open=True)
    running = Running(kingdom, FakeTokenStore(t2), processor)
    assert await running.observed.next() == "computations/c3"
    await running.stopped()
    assert [name for name, _ in processor.seen] == ["computations/c3"]


def assembled(
    kingdom: FakeKingdom, stream_max_failures: int | None, observer: Observed | None = None
) -> Herald:
    options = HeraldOptions(
        duchy=DuchyContext(WORKER1, setup_config()),
        herald_id="h",
        backoff=Backoff(max_attempts=3),
        stream_max_failures=stream_max_failures,
    )
    return assemble_herald(
        options,
        kingdom,
        FakeLocalComputations(),
        FakeTokenStore(),
        None,
        pacer=Pacer(sleep=RecordingSleep(), unit_random=lambda: 0.5),
        observer=observer,
    )


async def test_stream_patience_is_its_own_setting() -> None:
    # A Kingdom away for longer than the per-computation attempts allow (a restart): the stream
    # failures alone decide when the Herald gives up.
    kingdom = FakeKingdom()
    kingdom.faults.add("StreamActiveComputations", grpc.StatusCode.UNAVAILABLE, times=7)
    stop = asyncio.Event()
    observed = Observed()
    herald = assembled(kingdom, stream_max_failures=8, observer=observed)
    await kingdom.publish(computation(1, computation_pb2.Computation.SUCCEEDED))
    task = asyncio.create_task(herald.run(stop))
    assert await observed.next() == "computations/c1"
    stop.set()
    await task
    assert len(kingdom.stream_requests) >= 8

    kingdom = FakeKingdom()
    kingdom.faults.add("StreamActiveComputations", grpc.StatusCode.UNAVAILABLE, times=7)
    with pytest.raises(HeraldStreamError, match="3 times"):
        await assembled(kingdom, stream_max_failures=None).run(asyncio.Event())
