"""`cmms local up` and `cmms mc measure` run as a user runs them, for end-to-end tests.

`local_up` starts the system in its own session, waits for `endpoints.json`, and on leaving
stops it with SIGINT and checks that it exited cleanly and left no process behind. `measure`
runs one measurement with the CLI and returns its JSON document; `assert_exact` compares a
noise-free result with the truth counted in the clear.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import DATA_PROVIDERS
from cmms.deploy.local.truth import true_reach_and_frequency
from cmms.testing.processes import cmms, processes_mentioning

STARTUP_TIMEOUT_SECONDS = 240
MEASURE_TIMEOUT_SECONDS = 300
STOP_TIMEOUT_SECONDS = 60
MAX_FREQUENCY = 10


@dataclass(frozen=True)
class RunningSystem:
    workdir: Path
    log: Path
    env: Mapping[str, str] | None

    @property
    def endpoints_file(self) -> Path:
        return self.workdir / "endpoints.json"


@contextmanager
def local_up(
    workdir: Path,
    *flags: str,
    population: int,
    env: Mapping[str, str] | None = None,
) -> Iterator[RunningSystem]:
    """Run `cmms local up --workdir WORKDIR --population N --noise off FLAGS...` while inside."""
    log = workdir.parent / f"{workdir.name}-local-up.log"
    argv = cmms(
        "local", "up", "--workdir", str(workdir), "--population", str(population), "--noise",
        "off", *flags,
    )  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            argv,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=None if env is None else dict(env),
        )
    system = RunningSystem(workdir, log, env)
    try:
        _wait_for_endpoints(system, process)
        yield system
    finally:
        code = _stop(process)
        leftovers = processes_mentioning(str(workdir))
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
    assert code == 0, log.read_text()
    assert leftovers == [], "processes outlived cmms local up"


def _wait_for_endpoints(system: RunningSystem, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not system.endpoints_file.exists():
        if process.poll() is not None:
            pytest.fail(f"cmms local up exited early:\n{system.log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no endpoints.json after {STARTUP_TIMEOUT_SECONDS}s")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        # The test fails; the whole group goes so that nothing outlives it.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return -1


def measure(system: RunningSystem, protocol: LocalProtocol) -> dict[str, Any]:
    """One measurement with `cmms mc measure --json`, checked to have succeeded."""
    result = subprocess.run(
        cmms(
            "mc",
            "measure",
            "--endpoints",
            str(system.endpoints_file),
            "--protocol",
            protocol.value,
            "--type",
            protocol.measurement_type,
            "--measurement-consumer",
            protocol.measurement_consumer,
            "--max-frequency",
            str(MAX_FREQUENCY),
            "--timeout",
            str(MEASURE_TIMEOUT_SECONDS),
            "--json",
        ),
        capture_output=True,
        text=True,
        timeout=MEASURE_TIMEOUT_SECONDS + 60,
        env=None if system.env is None else dict(system.env),
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["state"] == "SUCCEEDED"
    assert sorted(document["data_providers"]) == [f"dataProviders/{e}" for e in DATA_PROVIDERS]
    (only,) = document["results"]
    assert only["signer"] == "duchies/aggregator"
    return document


def truth(population: int) -> Any:
    options = LocalOptions(workdir=Path("."), population_size=population)
    return true_reach_and_frequency(options, DATA_PROVIDERS, MAX_FREQUENCY)


def shares(result: dict[str, Any]) -> dict[int, float]:
    return {int(k): v for k, v in result.get("relative_frequency", {}).items()}


def assert_exact(document: dict[str, Any], population: int) -> None:
    """A noise-free HMSS or TrusTee result equals the truth counted in the clear."""
    (result,) = document["results"]
    expected = truth(population)
    assert result["reach"] == expected.reach
    got = shares(result)
    for frequency, share in expected.relative_frequency.items():
        assert got.get(frequency, 0.0) == pytest.approx(share, abs=1e-9)
