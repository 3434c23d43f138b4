"""Load: 20 measurements of mixed protocols (five each of LLv2, reach-only LLv2, HMSS and TrusTee)
made at once on one local system, whose mill schedulers run several jobs per mill type.

Every measurement must succeed with the right result (HMSS and TrusTee without noise equal the
truth; Liquid Legions within tolerance), each duchy must hold exactly the computations made, and
the run reports its throughput and its slowest stages (from the mill jobs' logs).

The population is small (600 VIDs, a reach of about 330) to keep the run within minutes on two
cores. At that reach LLv2's frequency histogram rests on a few hundred registers or fewer, plus
its protocol noise, so its shares are checked to 0.1 (the reach still to 10 %); the largest share
error seen is reported.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from statistics import mean

import pytest

from cmms.clients.mc.measure import MeasureOutcome
from cmms.deploy.demo.stages import read_stage_events, stage_times
from cmms.deploy.local.configs import DUCHIES
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import LocalSystem
from cmms.testing.local_system import (
    PROTOCOL_TYPES,
    DuchyComputations,
    check_result,
    start_measurement,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1200)]

StartSystem = Callable[..., Awaitable[LocalSystem]]
EACH = 5
POPULATION = 600
# Jobs per mill type each scheduler runs at once; one kernel process each (two cores in all).
MILL_CONCURRENCY = 3
LOAD_TIMEOUT_SECONDS = 900.0
LIQUID_LEGIONS_SHARE_TOLERANCE = 0.1


async def test_twenty_concurrent_measurements_of_mixed_protocols(
    start_system: StartSystem,
) -> None:
    system = await start_system(
        population_size=POPULATION, mill_maximum_concurrency=MILL_CONCURRENCY, mill_parallelism=1
    )
    plan = [p for p in LocalProtocol for _ in range(EACH)]
    began_at = datetime.now(UTC)
    began = time.monotonic()
    finished: dict[int, float] = {}

    async def timed(index: int, protocol: LocalProtocol) -> MeasureOutcome:
        outcome = await start_measurement(system, protocol, max_wait_seconds=LOAD_TIMEOUT_SECONDS)
        finished[index] = time.monotonic() - began
        return outcome

    tasks = [asyncio.ensure_future(timed(i, p)) for i, p in enumerate(plan)]
    try:
        outcomes = await asyncio.wait_for(asyncio.gather(*tasks), LOAD_TIMEOUT_SECONDS + 60)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.monotonic() - began

    checks = [
        check_result(
            system,
            protocol,
            outcome.results[0],
            liquid_legions_share_tolerance=LIQUID_LEGIONS_SHARE_TOLERANCE,
        )
        for protocol, outcome in zip(plan, outcomes, strict=True)
    ]
    # Each duchy holds exactly the computations made (TrusTee runs at the aggregator alone).
    held: dict[str, dict[str, int]] = {}
    for duchy in DUCHIES:
        computations = DuchyComputations(system, duchy)
        try:
            held[duchy] = {
                p.value: len(await computations.global_ids(PROTOCOL_TYPES[p]))
                for p in LocalProtocol
            }
        finally:
            await computations.close()
    # Stage times from the mill logs: every attempt of every computation of this run.
    events = read_stage_events(system.layout.logs / "mills")
    of_this_run = {e.computation for e in events if e.at >= began_at}
    times, _ = stage_times(events, of_this_run)
    by_stage: dict[tuple[str, str], list[float]] = defaultdict(list)
    for entry in times:
        by_stage[(entry.duchy, entry.stage)].append(entry.seconds)
    slowest = sorted(by_stage.items(), key=lambda item: max(item[1]), reverse=True)[:5]
    per_protocol: dict[str, list[float]] = defaultdict(list)
    for index, protocol in enumerate(plan):
        per_protocol[protocol.value].append(finished[index])
    report = {
        "measurements": len(plan),
        # Every measurement ended SUCCEEDED with a verified result, or the gather above raised.
        "succeeded": len(outcomes),
        "correct": sum(c.ok for c in checks),
        "lost": len(plan) - len(outcomes),
        "elapsed_s": round(elapsed, 1),
        "throughput_per_minute": round(len(plan) / elapsed * 60, 2),
        "finished_after_s": {
            p: {"first": round(min(v), 1), "last": round(max(v), 1), "mean": round(mean(v), 1)}
            for p, v in per_protocol.items()
        },
        "slowest_stages": [
            {
                "duchy": duchy,
                "stage": stage,
                "max_s": round(max(seconds), 2),
                "mean_s": round(mean(seconds), 2),
                "attempts": len(seconds),
            }
            for (duchy, stage), seconds in slowest
        ],
        "stage_attempts": len(times),
        "largest_share_error": {
            p.value: round(
                max(c.largest_share_error for q, c in zip(plan, checks, strict=True) if q is p), 4
            )
            for p in LocalProtocol
        },
        "reach_error": {
            p.value: round(
                max(
                    abs(c.reach - c.true_reach) / c.true_reach
                    for q, c in zip(plan, checks, strict=True)
                    if q is p
                ),
                4,
            )
            for p in LocalProtocol
        },
    }
    (system.layout.root / "load-report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    assert all(c.ok for c in checks), [
        (p.value, c.detail) for p, c in zip(plan, checks, strict=True)
    ]
    assert all(len(o.results) == 1 for o in outcomes)

    for duchy, counts in held.items():
        for protocol in LocalProtocol:
            expected = 0 if protocol is LocalProtocol.TRUSTEE and duchy != "aggregator" else EACH
            assert counts[protocol.value] == expected, (duchy, counts)
    assert report["lost"] == 0
