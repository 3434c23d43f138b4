"""`cmms local up --duchy-database aggregator=spanner://...`: one duchy on Spanner (emulator),
the others on SQLite, and a whole measurement through them."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from cmms.deploy.local.routing import LocalProtocol
from cmms.duchy.db import open_duchy_database
from cmms.duchy.db.records import StageKey
from cmms.protocols.hmss.stages import Stage as Hmss
from cmms.protocols.stages import ProtocolType
from cmms.testing.local_up_cli import assert_exact, local_up, measure
from cmms.testing.spanner_emulator import SpannerEmulator, spanner_emulator

__all__ = ["spanner_emulator"]

pytestmark = pytest.mark.e2e

POPULATION = 800
HMSS_COMPLETE = StageKey(int(ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE), int(Hmss.COMPLETE))


async def completed_hmss_computations(url: str) -> list[str]:
    """Global ids of the HMSS computations the duchy database at `url` holds as complete."""
    database = open_duchy_database(url)
    try:
        return await database.computations.global_ids_in_stages([HMSS_COMPLETE])
    finally:
        await database.close()


def test_hmss_with_the_aggregator_on_spanner(
    tmp_path: Path, spanner_emulator: SpannerEmulator
) -> None:
    workdir = tmp_path / "local"
    aggregator_url = spanner_emulator.new_database_url("aggregator")
    # The children find the emulator through SPANNER_EMULATOR_HOST, inherited from here.
    assert os.environ["SPANNER_EMULATOR_HOST"] == spanner_emulator.host
    with local_up(
        workdir, "--duchy-database", f"aggregator={aggregator_url}", population=POPULATION
    ) as system:
        document = measure(system, LocalProtocol.HMSS)
    assert_exact(document, POPULATION)

    # The aggregator's computation is in Spanner, and only there; the workers' are in SQLite.
    databases = workdir / "db"
    assert not (databases / "aggregator.db").exists()
    (on_spanner,) = asyncio.run(completed_hmss_computations(aggregator_url))
    for worker in ("worker1", "worker2"):
        url = f"sqlite:///{(databases / f'{worker}.db').resolve()}"
        assert asyncio.run(completed_hmss_computations(url)) == [on_spanner]
