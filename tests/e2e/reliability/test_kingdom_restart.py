"""The Kingdom crashes (SIGKILL) during a computation and is started again on the same database
and ports: the heralds reconnect and resume from their continuation tokens (one of them is even
restarted meanwhile and reads its token back from the duchy), the mills' and fulfilment's Kingdom
calls are retried, and nothing is duplicated or lost: the measurement succeeds with the exact
result, each duchy holds exactly one computation for it, and every stage completed exactly once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

from cmms.deploy.local.configs import DUCHIES
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import LocalSystem
from cmms.protocols.stages import ProtocolType
from cmms.testing.local_system import (
    DuchyComputations,
    check_result,
    eventually,
    log_events,
    mill_log_events,
    start_measurement,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

StartSystem = Callable[..., Awaitable[LocalSystem]]
HMSS = ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE
RESTARTED_HERALD = "worker1-herald"


async def test_a_kingdom_restart_mid_computation_loses_and_duplicates_nothing(
    start_system: StartSystem,
) -> None:
    system = await start_system()
    duchies = {d: DuchyComputations(system, d) for d in DUCHIES}
    heralds = {d: system.supervisor.pid(f"{d}-herald") for d in DUCHIES}
    measuring = start_measurement(system, LocalProtocol.HMSS)
    try:

        async def created_everywhere() -> str | None:
            found = [await duchies[d].global_ids(HMSS) for d in DUCHIES]
            ids = {gid for ids in found for gid in ids}
            return ids.pop() if all(found) and len(ids) == 1 else None

        gid = await eventually(created_everywhere, timeout=120, what="the computation everywhere")
        await system.supervisor.stop_child("kingdom", kill=True)
        crashed = time.monotonic()

        def stream_failures(duchy: str) -> int:
            events = log_events(system.supervisor.log_file(f"{duchy}-herald"))
            return sum(e.event == "stream failed; reconnecting" for e in events)

        async def every_herald_lost_the_stream() -> bool | None:
            return all(stream_failures(d) for d in DUCHIES) or None

        await eventually(every_herald_lost_the_stream, timeout=60, what="the heralds to notice")
        # One herald starts afresh meanwhile: it can only go on from its stored token.
        await system.supervisor.stop_child(RESTARTED_HERALD, kill=True)
        await system.supervisor.start_child(RESTARTED_HERALD)
        await system.supervisor.start_child("kingdom")
        await system.supervisor.wait_healthy(120, names=["kingdom", RESTARTED_HERALD])
        outage = time.monotonic() - crashed
        outcome = await asyncio.wait_for(measuring, 300)
        held = {d: await duchies[d].global_ids(HMSS) for d in DUCHIES}
    finally:
        if not measuring.done():
            measuring.cancel()
        await asyncio.gather(measuring, return_exceptions=True)
        for computations in duchies.values():
            await computations.close()

    assert system.supervisor.failure() is None
    check = check_result(system, LocalProtocol.HMSS, outcome.results[0])
    assert check.ok, check.detail
    assert len(outcome.results) == 1
    assert held == {d: [gid] for d in DUCHIES}
    # The other heralds rode the outage out in the same process.
    for duchy in DUCHIES:
        if f"{duchy}-herald" != RESTARTED_HERALD:
            assert system.supervisor.pid(f"{duchy}-herald") == heralds[duchy]
    done = Counter(
        (e.duchy, e.fields["stage"])
        for e in mill_log_events(system)
        if e.event == "stage done" and e.fields.get("computation") == gid
    )
    assert done and set(done.values()) == {1}, done
    retried = [
        (e.duchy, e.fields["stage"])
        for e in mill_log_events(system)
        if e.event == "transient error; retrying later" and e.fields.get("computation") == gid
    ]
    print(f"Kingdom away {outage:.1f} s; mill stages retried meanwhile: {retried}")
