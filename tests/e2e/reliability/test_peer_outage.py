"""A peer duchy's ComputationControl server away for 30 s in the middle of the protocol: the
sending mills' stages fail with UNAVAILABLE, are re-queued with a growing delay, and succeed once
the server is back; the measurement ends with the exact result.

HMSS: as soon as the aggregator holds the computation its ComputationControl server is stopped;
both workers then reach their shuffle phase, whose output goes to the aggregator.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import LocalSystem
from cmms.protocols.stages import ProtocolType
from cmms.testing.local_system import (
    DuchyComputations,
    LogEvent,
    check_result,
    eventually,
    mill_log_events,
    start_measurement,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

StartSystem = Callable[..., Awaitable[LocalSystem]]
OUTAGE_SECONDS = 30.0
PEER = "aggregator"
SERVER = f"{PEER}-computation-control"
RETRYING = "transient error; retrying later"


def retries(events: list[LogEvent], computation: str) -> list[LogEvent]:
    return [e for e in events if e.event == RETRYING and e.fields.get("computation") == computation]


async def test_a_peer_server_away_for_30_s_is_retried_until_it_is_back(
    start_system: StartSystem,
) -> None:
    system = await start_system()
    aggregator = DuchyComputations(system, PEER)
    measuring = start_measurement(system, LocalProtocol.HMSS)
    try:

        async def computation_id() -> str | None:
            ids = await aggregator.global_ids(ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE)
            return ids[0] if ids else None

        gid = await eventually(computation_id, timeout=120, what="the aggregator's computation")
        await system.supervisor.stop_child(SERVER)
        stopped = time.monotonic()

        async def failed_sends() -> list[LogEvent] | None:
            return retries(mill_log_events(system), gid) or None

        during = await eventually(
            failed_sends, timeout=120, what="a worker's send to the absent server to fail"
        )
        # The outage lasts its full length whatever the senders do meanwhile.
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
        outage = time.monotonic() - stopped
        failures_during_outage = retries(mill_log_events(system), gid)
        await system.supervisor.start_child(SERVER)
        await system.supervisor.wait_healthy(60, names=[SERVER])
        outcome = await asyncio.wait_for(measuring, 300)
    finally:
        if not measuring.done():
            measuring.cancel()
        await asyncio.gather(measuring, return_exceptions=True)
        await aggregator.close()

    assert outage >= OUTAGE_SECONDS
    assert during
    # The workers' sends to the absent server, each re-queued after b + uniform{0..b} seconds
    # with b = 2^attempt: the later the attempt, the longer the wait.
    unavailable = [e for e in failures_during_outage if "UNAVAILABLE" in str(e.fields["error"])]
    assert unavailable, [e.fields for e in failures_during_outage]
    for failure in unavailable:
        assert failure.duchy != PEER
        attempt = int(str(failure.fields["attempt"]))
        assert 2**attempt <= int(str(failure.fields["delay_seconds"])) <= 2 ** (attempt + 1)
    summary = [(e.duchy, e.fields["stage"], e.fields["attempt"]) for e in unavailable]
    print(f"outage {outage:.1f} s; sends refused and retried later: {summary}")
    check = check_result(system, LocalProtocol.HMSS, outcome.results[0])
    assert check.ok, check.detail
    assert system.supervisor.failure() is None
