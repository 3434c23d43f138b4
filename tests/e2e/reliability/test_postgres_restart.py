"""PostgreSQL crashes under a duchy in the middle of a computation and comes back: the duchy's
services (internal API, and through it the controls, fulfilment, herald and mills) reconnect and
the measurement succeeds with the exact result.

The system runs on PostgreSQL: the Kingdom and two duchies on one throwaway cluster, worker1 on
a second one, which is the one crashed (`pg_ctl stop -m immediate`) and started again. Both
clusters belong to this test alone (skipped without the PostgreSQL binaries).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import LocalSystem
from cmms.duchy.mill.tokens import stage_name
from cmms.protocols.stages import ProtocolType
from cmms.testing.local_system import (
    DuchyComputations,
    check_result,
    eventually,
    mill_log_events,
    start_measurement,
)
from cmms.testing.postgres_cluster import PostgresCluster

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(480),
    pytest.mark.skipif(
        PostgresCluster.unavailable_reason() is not None,
        reason=f"no throwaway PostgreSQL cluster: {PostgresCluster.unavailable_reason()}",
    ),
]

StartSystem = Callable[..., Awaitable[LocalSystem]]
DUCHY = "worker1"
# Long enough for the duchy's processes to run into the absent database.
MINIMUM_OUTAGE_SECONDS = 10.0
# worker1 is HMSS's first non-aggregator: its seeds sent, waiting for worker2's, or shuffling.
MIDDLE_STAGES = ("WAIT_ON_SHUFFLE_INPUT_PHASE_TWO", "SHUFFLE_PHASE")
UNAVAILABLE_MARKS = ("UNAVAILABLE", "OperationalError", "connection")


@pytest.fixture
def clusters() -> Iterator[tuple[PostgresCluster, PostgresCluster]]:
    made: list[PostgresCluster] = []
    try:
        for _ in range(2):
            cluster = PostgresCluster.create()
            made.append(cluster)
            cluster.start()
        yield made[0], made[1]
    finally:
        for cluster in made:
            cluster.destroy()


async def test_a_duchy_rides_a_postgres_restart_out(
    start_system: StartSystem, clusters: tuple[PostgresCluster, PostgresCluster]
) -> None:
    shared, own = clusters
    duchy_database = own.url.rsplit("/", 1)[0] + f"/cmms_{DUCHY}"
    system = await start_system(database=shared.url, duchy_databases={DUCHY: duchy_database})
    assert not (system.layout.databases).exists()  # nothing on SQLite
    worker = DuchyComputations(system, DUCHY)
    measuring = start_measurement(system, LocalProtocol.HMSS)
    try:

        async def computation_id() -> str | None:
            ids = await worker.global_ids(ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE)
            return ids[0] if ids else None

        gid = await eventually(computation_id, timeout=120, what=f"{DUCHY}'s computation")

        async def under_way() -> str | None:
            token = await worker.token(gid)
            name = stage_name(token) if token is not None else None
            return name if name in MIDDLE_STAGES else None

        crash_stage = await eventually(
            under_way, timeout=180, what=f"{DUCHY} in the middle of the protocol", interval=0.05
        )
        logs = [system.supervisor.log_file(n) for n in system.supervisor.names()]
        before = {log: log.stat().st_size for log in logs}
        await asyncio.to_thread(own.stop, "immediate")
        crashed = time.monotonic()

        async def noticed() -> list[str] | None:
            names = [
                log.stem
                for log in logs
                if log.stem.startswith(DUCHY) and grew_with_outage(log, before[log])
            ]
            return names or None

        noticers = await eventually(
            noticed, timeout=120, what=f"{DUCHY}'s processes to run into the absent database"
        )
        await asyncio.sleep(max(0.0, MINIMUM_OUTAGE_SECONDS - (time.monotonic() - crashed)))
        await asyncio.to_thread(own.start)
        outage = time.monotonic() - crashed
        outcome = await asyncio.wait_for(measuring, 300)
        held = await worker.global_ids(ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE)
    finally:
        if not measuring.done():
            measuring.cancel()
        await asyncio.gather(measuring, return_exceptions=True)
        await worker.close()

    assert system.supervisor.failure() is None
    check = check_result(system, LocalProtocol.HMSS, outcome.results[0])
    assert check.ok, check.detail
    assert held == [gid]
    retried = [
        (e.duchy, e.fields["stage"])
        for e in mill_log_events(system)
        if e.event == "transient error; retrying later" and e.fields.get("computation") == gid
    ]
    print(
        f"{DUCHY}'s database crashed in {crash_stage}, away {outage:.1f} s; "
        f"noticed by {noticers}; mill stages retried: {retried}"
    )


def grew_with_outage(log: Path, offset: int) -> bool:
    """Whether what the log got since `offset` mentions the database being away."""
    try:
        with log.open("rb") as file:
            file.seek(offset)
            added = file.read().decode(errors="replace")
    except OSError:
        return False
    return any(mark in added for mark in UNAVAILABLE_MARKS)
