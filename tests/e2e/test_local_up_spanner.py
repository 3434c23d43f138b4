"""`cmms local up --duchy-database aggregator=spanner://...`: one duchy on Spanner (emulator),
the others on SQLite, and a whole measurement through them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.system import DATA_PROVIDERS
from cmms.deploy.local.truth import true_reach_and_frequency
from cmms.duchy.db import open_duchy_database
from cmms.duchy.db.records import StageKey
from cmms.protocols.hmss.stages import Stage as Hmss
from cmms.protocols.stages import ProtocolType
from cmms.testing.processes import cmms, processes_mentioning
from cmms.testing.spanner_emulator import SpannerEmulator, spanner_emulator

__all__ = ["spanner_emulator"]

pytestmark = pytest.mark.e2e

POPULATION = 800
MAX_FREQUENCY = 10
STARTUP_TIMEOUT_SECONDS = 240
MEASURE_TIMEOUT_SECONDS = 300
STOP_TIMEOUT_SECONDS = 60
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
    log = tmp_path / "local-up.log"
    aggregator_url = spanner_emulator.new_database_url("aggregator")
    # The children find the emulator through SPANNER_EMULATOR_HOST, inherited from here.
    assert os.environ["SPANNER_EMULATOR_HOST"] == spanner_emulator.host
    with log.open("wb") as output:
        process = subprocess.Popen(
            cmms(
                "local",
                "up",
                "--workdir",
                str(workdir),
                "--population",
                str(POPULATION),
                "--noise",
                "off",
                "--duchy-database",
                f"aggregator={aggregator_url}",
            ),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not (workdir / "endpoints.json").exists():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no endpoints.json:\n{log.read_text()}"
            time.sleep(0.2)
        measured = subprocess.run(
            cmms(
                "mc",
                "measure",
                "--endpoints",
                str(workdir / "endpoints.json"),
                "--protocol",
                "hmss",
                "--measurement-consumer",
                "mc-hmss",
                "--max-frequency",
                str(MAX_FREQUENCY),
                "--timeout",
                str(MEASURE_TIMEOUT_SECONDS),
                "--json",
            ),
            capture_output=True,
            text=True,
            timeout=MEASURE_TIMEOUT_SECONDS + 60,
        )
        assert measured.returncode == 0, measured.stderr
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            code = process.wait()
    assert code == 0, log.read_text()
    assert processes_mentioning(str(workdir)) == []

    document = json.loads(measured.stdout)
    assert document["state"] == "SUCCEEDED"
    (result,) = document["results"]
    truth = true_reach_and_frequency(
        LocalOptions(workdir=workdir, population_size=POPULATION), DATA_PROVIDERS, MAX_FREQUENCY
    )
    assert result["reach"] == truth.reach
    got = {int(k): v for k, v in result["relative_frequency"].items()}
    for frequency, share in truth.relative_frequency.items():
        assert got.get(frequency, 0.0) == pytest.approx(share, abs=1e-9)

    # The aggregator's computation is in Spanner, and only there; the workers' are in SQLite.
    databases = workdir / "db"
    assert not (databases / "aggregator.db").exists()
    (on_spanner,) = asyncio.run(completed_hmss_computations(aggregator_url))
    for worker in ("worker1", "worker2"):
        url = f"sqlite:///{(databases / f'{worker}.db').resolve()}"
        assert asyncio.run(completed_hmss_computations(url)) == [on_spanner]
