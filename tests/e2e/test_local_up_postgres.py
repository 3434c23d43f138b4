"""`cmms local up --database postgresql://...`: every party in its own PostgreSQL database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from cmms.deploy.local.configs import DUCHIES
from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.system import DATA_PROVIDERS
from cmms.deploy.local.truth import true_reach_and_frequency
from cmms.testing.processes import cmms, processes_mentioning
from cmms.testing.scratch_databases import POSTGRES_SKIP_REASON, postgres_server_url

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

POPULATION = 800
STARTUP_TIMEOUT_SECONDS = 240
STOP_TIMEOUT_SECONDS = 60


@pytest.fixture
def base_url() -> Iterator[str]:
    """A server URL whose database name is a fresh prefix; its databases are dropped after."""
    server = postgres_server_url()
    if server is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    base = f"cmms_local_{uuid.uuid4().hex[:12]}"
    yield make_url(server).set(database=base).render_as_string(hide_password=False)
    admin = create_engine(make_url(server), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            for party in ("kingdom", *DUCHIES):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{base}_{party}" WITH (FORCE)'))
    finally:
        admin.dispose()


def test_hmss_through_a_system_on_postgres(tmp_path: Path, base_url: str) -> None:
    workdir = tmp_path / "local"
    log = tmp_path / "local-up.log"
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
                "--database",
                base_url,
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
            assert time.monotonic() < deadline, "no endpoints.json"
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
                "--json",
            ),
            capture_output=True,
            text=True,
            timeout=300,
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
    assert not (workdir / "db").exists()  # no SQLite files: everything went to PostgreSQL
    (result,) = json.loads(measured.stdout)["results"]
    truth = true_reach_and_frequency(
        LocalOptions(workdir=workdir, population_size=POPULATION), DATA_PROVIDERS, 10
    )
    assert result["reach"] == truth.reach
