"""A process of `cmms local up` dying: everything stops, and the error names it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cmms.testing.processes import cmms, processes_mentioning

pytestmark = pytest.mark.e2e

STARTUP_TIMEOUT_SECONDS = 240
STOP_TIMEOUT_SECONDS = 60


def test_a_dead_herald_stops_the_system_and_is_named(tmp_path: Path) -> None:
    workdir = tmp_path / "local"
    log = tmp_path / "local-up.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            cmms("local", "up", "--workdir", str(workdir), "--population", "500"),
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
        (herald,) = processes_mentioning(str(workdir), "duchy herald", "--duchy-name=worker2")
        os.kill(herald, signal.SIGKILL)
        code = process.wait(timeout=STOP_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output_text = log.read_text()
    assert code == 1, output_text
    assert "cmms: error: worker2-herald was killed by signal SIGKILL" in output_text
    assert f"last lines of {workdir}/logs/worker2-herald.log" in output_text
    leftovers = processes_mentioning(str(workdir))
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert leftovers == []
