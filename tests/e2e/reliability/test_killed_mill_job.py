"""A mill job killed (SIGKILL) in the middle of a stage: its work lock expires, another mill job
claims the computation again and runs the stage, and the measurement ends with the right result.

The mill jobs of this system take short locks, so the lapse is quick; every stage of this small
population still ends well inside them.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest

from cmms.deploy.local.configs import DUCHIES
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import LocalSystem
from cmms.duchy.mill.tokens import stage_name
from cmms.protocols.stages import ProtocolType
from cmms.testing.local_system import (
    DuchyComputations,
    LogEvent,
    check_result,
    eventually,
    is_alive,
    lock_held,
    log_events,
    mill_job_log,
    mill_jobs,
    mill_log_events,
    start_measurement,
)

StartSystem = Callable[..., Awaitable[LocalSystem]]
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

# Every stage of this population ends well inside it, also on a busy machine (the longest
# seen: about 12 s).
LOCK = timedelta(seconds=45)
# The longest stages of LLv2: one of them is running for seconds at each duchy.
TARGET_STAGES = ("EXECUTION_PHASE_TWO", "EXECUTION_PHASE_THREE", "EXECUTION_PHASE_ONE")
MEASUREMENT_TIMEOUT_SECONDS = 360.0


@dataclass(frozen=True)
class Victim:
    duchy: str
    job: str
    pid: int
    stage: str
    attempt: int


def stage_events(events: list[LogEvent], computation: str, stage: str, event: str) -> list[int]:
    """Attempts of `stage` of `computation` with a `stage started` or `stage done` line."""
    return [
        int(str(e.fields.get("attempt", 0)))
        for e in events
        if e.event == event
        and e.fields.get("computation") == computation
        and e.fields.get("stage") == stage
    ]


async def exited(pid: int) -> bool | None:
    return None if is_alive(pid) else True


async def mid_stage_job(
    system: LocalSystem, duchies: dict[str, DuchyComputations], gid: str, spared: set[str]
) -> Victim | None:
    """A mill job that holds the computation's lock and has logged the start of a target stage
    but not its end."""
    for duchy, computations in duchies.items():
        token = await computations.token(gid)
        if token is None or not lock_held(token) or token.lock_owner in spared:
            continue
        stage = stage_name(token)
        pid = mill_jobs(system, duchy).get(token.lock_owner)
        if stage not in TARGET_STAGES or pid is None:
            continue
        events = log_events(mill_job_log(system, duchy, token.lock_owner))
        started = stage_events(events, gid, stage, "stage started")
        done = stage_events(events, gid, stage, "stage done")
        if started and not done:
            return Victim(duchy, token.lock_owner, pid, stage, token.attempt)
    return None


async def test_a_mill_job_killed_mid_stage_is_taken_over_after_its_lock_expires(
    start_system: StartSystem,
) -> None:
    system = await start_system(work_lock_duration=LOCK)
    duchies = {d: DuchyComputations(system, d) for d in DUCHIES}
    measuring = start_measurement(system, LocalProtocol.LLV2)
    try:

        async def computation_id() -> str | None:
            ids = await duchies["aggregator"].global_ids(ProtocolType.LIQUID_LEGIONS_V2)
            return ids[0] if ids else None

        gid = await eventually(computation_id, timeout=120, what="the aggregator's computation")
        # The kill races the stage's end; a stage that ended first is no proof, so try another.
        spared: set[str] = set()
        victim: Victim | None = None
        for _ in range(3):
            candidate = await eventually(
                lambda: mid_stage_job(system, duchies, gid, spared),
                timeout=240,
                what="a mill job in the middle of an LLv2 execution phase",
                interval=0.05,
            )
            os.kill(candidate.pid, signal.SIGKILL)
            await eventually(
                lambda pid=candidate.pid: exited(pid),  # type: ignore[misc]
                timeout=30,
                what=f"job {candidate.job} to die",
            )
            events = log_events(mill_job_log(system, candidate.duchy, candidate.job))
            if not stage_events(events, gid, candidate.stage, "stage done"):
                victim = candidate
                break
            spared.add(candidate.job)
        assert victim is not None, "every kill landed after the stage had ended"
        print(f"killed {victim.job} (pid {victim.pid}) in {victim.stage} at {victim.duchy}")

        # The dead job still owns the lock until it lapses; then another job claims the stage.
        token = await duchies[victim.duchy].token(gid)
        assert token is not None
        assert token.lock_owner == victim.job and stage_name(token) == victim.stage

        async def taken_over() -> list[int] | None:
            events = mill_log_events(system, victim.duchy)
            done = stage_events(events, gid, victim.stage, "stage done")
            return done or None

        finished_attempts = await eventually(
            taken_over, timeout=LOCK.total_seconds() + 120, what="the stage to be run again"
        )
        outcome = await asyncio.wait_for(measuring, MEASUREMENT_TIMEOUT_SECONDS)
    finally:
        if not measuring.done():
            measuring.cancel()
        await asyncio.gather(measuring, return_exceptions=True)
        for computations in duchies.values():
            await computations.close()

    # The stage was completed once, by a later attempt than the killed one.
    assert len(finished_attempts) == 1
    assert finished_attempts[0] > victim.attempt
    check = check_result(system, LocalProtocol.LLV2, outcome.results[0])
    assert check.ok, check.detail
