"""The scheduler loop against an in-memory claim source and a recording launcher."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Sequence
from datetime import timedelta

import pytest

from cmms.duchy.scheduler import ClaimedWork, MillClaim, MillScheduler, MillType, MillTypeLimits
from cmms.protocols.hmss.stages import Stage as HmssStage
from cmms.protocols.llv2.stages import Stage as Llv2Stage
from cmms.protocols.stages import ProtocolType

from .fakes import FakeClaimSource, RecordingLauncher

LLV2 = ProtocolType.LIQUID_LEGIONS_V2
RO_LLV2 = ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2
HMSS = ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE
TRUS_TEE = ProtocolType.TRUS_TEE


def scheduler(
    claims: FakeClaimSource,
    launcher: RecordingLauncher,
    *limits: MillTypeLimits,
) -> MillScheduler:
    chosen = limits or tuple(MillTypeLimits(t) for t in MillType)
    return MillScheduler("worker1", claims, launcher, chosen, rng=random.Random(7))


async def test_claims_are_carried_into_the_launched_jobs() -> None:
    claims, launcher = FakeClaimSource(), RecordingLauncher()
    claims.add(LLV2, "llv2-computation", version=12)
    claims.add(HMSS, "hmss-computation", version=3)

    launched = await scheduler(claims, launcher).run_cycle()

    assert [(kind, c.global_computation_id) for kind, c in launcher.launched] == [
        (MillType.LLV2, "llv2-computation"),
        (MillType.HMSS, "hmss-computation"),
    ]
    llv2_claim = launcher.launched[0][1]
    assert llv2_claim.computation_type is LLV2 and llv2_claim.version == 12
    assert launched == [claim for _, claim in launcher.launched]
    # The job is named after the lock owner, so the mill can prove the claim is its own.
    owners = {call.owner for call in claims.calls if call.computation_type is LLV2}
    assert llv2_claim.mill_id in owners
    assert re.fullmatch(
        r"worker1-llv2-mill-job-[bcdfghjklmnpqrstvwxz2456789]{5}", llv2_claim.mill_id
    )
    assert llv2_claim.mill_args() == [
        f"--mill-id={llv2_claim.mill_id}",
        "--claimed-computation-type=LIQUID_LEGIONS_V2",
        "--claimed-computation-id=llv2-computation",
        "--claimed-computation-version=12",
    ]


async def test_nothing_is_launched_when_nothing_is_claimable() -> None:
    claims, launcher = FakeClaimSource(), RecordingLauncher()

    assert await scheduler(claims, launcher).run_cycle() == []

    assert launcher.launched == []
    # Every protocol was asked, once, and every mill type was still cleaned up.
    assert [call.computation_type for call in claims.calls] == [LLV2, RO_LLV2, HMSS, TRUS_TEE]
    assert launcher.cleanups == [MillType.LLV2, MillType.HMSS, MillType.TRUSTEE]


async def test_maximum_concurrency_is_respected_across_cycles() -> None:
    claims, launcher = FakeClaimSource(), RecordingLauncher()
    for n in range(5):
        claims.add(HMSS, f"hmss-{n}")
    loop = scheduler(claims, launcher, MillTypeLimits(MillType.HMSS, maximum_concurrency=2))

    await loop.run_cycle()
    await loop.run_cycle()
    await loop.run_cycle()
    assert [c.global_computation_id for _, c in launcher.launched] == ["hmss-0", "hmss-1"]
    # At the limit the scheduler does not even claim: the work stays unlocked for later.
    assert len(claims.calls) == 2

    launcher.finish(launcher.launched[0][1].mill_id)
    await loop.run_cycle()
    assert [c.global_computation_id for _, c in launcher.launched][-1] == "hmss-2"
    assert len(await launcher.active_jobs(MillType.HMSS)) == 2


async def test_llv2_and_reach_only_llv2_share_one_limit() -> None:
    claims, launcher = FakeClaimSource(), RecordingLauncher()
    claims.add(LLV2, "llv2")
    claims.add(RO_LLV2, "reach-only")
    loop = scheduler(claims, launcher, MillTypeLimits(MillType.LLV2, maximum_concurrency=1))

    await loop.run_cycle()
    assert [c.global_computation_id for _, c in launcher.launched] == ["llv2"]

    launcher.finish(launcher.launched[0][1].mill_id)
    await loop.run_cycle()
    assert [c.global_computation_id for _, c in launcher.launched] == ["llv2", "reach-only"]
    assert launcher.launched[1][1].computation_type is RO_LLV2


async def test_claims_prioritize_the_initial_stage_with_the_type_lock_duration() -> None:
    claims, launcher = FakeClaimSource(), RecordingLauncher()
    loop = scheduler(
        claims,
        launcher,
        MillTypeLimits(MillType.LLV2, work_lock_duration=timedelta(minutes=7)),
        MillTypeLimits(MillType.HMSS, work_lock_duration=timedelta(seconds=90)),
    )

    await loop.run_cycle()

    by_type = {call.computation_type: call for call in claims.calls}
    assert by_type[LLV2].lock_duration == timedelta(minutes=7)
    assert by_type[LLV2].prioritized_stages == (Llv2Stage.INITIALIZATION_PHASE.value,)
    assert by_type[HMSS].lock_duration == timedelta(seconds=90)
    assert by_type[HMSS].prioritized_stages == (HmssStage.INITIALIZED.value,)


async def test_a_maximum_concurrency_of_zero_turns_a_mill_type_off() -> None:
    claims, launcher = FakeClaimSource(), RecordingLauncher()
    claims.add(TRUS_TEE, "trustee")
    loop = scheduler(
        claims,
        launcher,
        MillTypeLimits(MillType.HMSS),
        MillTypeLimits(MillType.TRUSTEE, maximum_concurrency=0),
    )

    await loop.run_cycle()

    assert loop.mill_types == [MillType.HMSS]
    assert {call.computation_type for call in claims.calls} == {HMSS}
    assert launcher.launched == []


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        MillTypeLimits(MillType.LLV2, maximum_concurrency=-1)
    with pytest.raises(ValueError):
        MillTypeLimits(MillType.LLV2, work_lock_duration=timedelta(0))


class FailingOnceClaims(FakeClaimSource):
    failed: bool = False

    async def claim_work(
        self,
        computation_type: ProtocolType,
        owner: str,
        lock_duration: timedelta,
        prioritized_stages: Sequence[int],
    ) -> ClaimedWork | None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("internal API away")
        return await super().claim_work(computation_type, owner, lock_duration, prioritized_stages)


async def test_run_survives_a_failed_cycle_and_stops_when_asked() -> None:
    claims = FailingOnceClaims()
    claims.add(HMSS, "after-the-failure")
    stop = asyncio.Event()

    class StopAfterLaunch(RecordingLauncher):
        async def launch(self, mill_type: MillType, claim: MillClaim) -> None:
            await super().launch(mill_type, claim)
            stop.set()

    launcher = StopAfterLaunch()
    loop = MillScheduler(
        "worker1",
        claims,
        launcher,
        [MillTypeLimits(MillType.HMSS)],
        polling_delay=timedelta(milliseconds=1),
    )

    await asyncio.wait_for(loop.run(stop), timeout=30)

    assert claims.failed
    assert [c.global_computation_id for _, c in launcher.launched] == ["after-the-failure"]


class ScriptedWatcher:
    """A `WorkWatcher` the test drives: each wait ends with the next scripted outcome."""

    def __init__(self) -> None:
        self.outcomes: asyncio.Queue[str | Exception] = asyncio.Queue()
        self.calls: list[tuple[str, timedelta]] = []
        self.called = asyncio.Event()

    async def await_work(self, since: str, timeout: timedelta) -> str:
        self.calls.append((since, timeout))
        self.called.set()
        outcome = await self.outcomes.get()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def next_call(self) -> None:
        await asyncio.wait_for(self.called.wait(), timeout=30)
        self.called.clear()


async def test_a_cycle_starts_as_soon_as_the_watcher_reports_work() -> None:
    claims, launcher, watcher = FakeClaimSource(), RecordingLauncher(), ScriptedWatcher()
    stop = asyncio.Event()
    # An hour's polling delay: only the watcher can start the second cycle in time.
    loop = MillScheduler(
        "worker1",
        claims,
        launcher,
        [MillTypeLimits(MillType.HMSS)],
        polling_delay=timedelta(hours=1),
        watcher=watcher,
    )
    running = asyncio.ensure_future(loop.run(stop))

    await watcher.next_call()
    assert launcher.launched == []
    assert watcher.calls == [("", timedelta(hours=1))]
    claims.add(HMSS, "new-work")
    watcher.outcomes.put_nowait("server:1")

    await watcher.next_call()
    assert [c.global_computation_id for _, c in launcher.launched] == ["new-work"]
    # The next wait starts from the change the last one saw.
    assert watcher.calls[-1] == ("server:1", timedelta(hours=1))

    stop.set()  # ends the pending wait at once
    await asyncio.wait_for(running, timeout=30)


async def test_a_failed_wait_falls_back_to_the_polling_delay() -> None:
    claims, launcher, watcher = FakeClaimSource(), RecordingLauncher(), ScriptedWatcher()
    stop = asyncio.Event()
    loop = MillScheduler(
        "worker1",
        claims,
        launcher,
        [MillTypeLimits(MillType.HMSS)],
        polling_delay=timedelta(milliseconds=1),
        watcher=watcher,
    )
    running = asyncio.ensure_future(loop.run(stop))
    await watcher.next_call()
    watcher.outcomes.put_nowait("server:4")
    await watcher.next_call()
    cycles_before = len(claims.calls)
    watcher.outcomes.put_nowait(ConnectionError("internal API away"))

    await watcher.next_call()
    # Another cycle ran after the polling delay, and the marker was forgotten.
    assert len(claims.calls) > cycles_before
    assert watcher.calls[-1][0] == ""
    stop.set()
    await asyncio.wait_for(running, timeout=30)
