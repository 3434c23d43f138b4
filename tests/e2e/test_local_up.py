"""`cmms local up` as a user runs it, measured with `cmms mc measure` for every protocol.

One system (noise off) serves every test of this module. HMSS and TrusTee compute on the exact
frequency vectors, so with their noise off the result must equal the truth counted in the clear;
Liquid Legions estimates from a sketch and always adds its protocol's noise, so LLv2 and
reach-only LLv2 are checked within a tolerance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cmms.clients.endpoints import Endpoints
from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import DATA_PROVIDERS
from cmms.deploy.local.truth import true_reach_and_frequency
from cmms.testing.processes import cmms, processes_mentioning

pytestmark = pytest.mark.e2e

POPULATION = 3_000
MAX_FREQUENCY = 10
STARTUP_TIMEOUT_SECONDS = 240
MEASURE_TIMEOUT_SECONDS = 300
STOP_TIMEOUT_SECONDS = 60


@dataclass
class RunningSystem:
    workdir: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def endpoints_file(self) -> Path:
        return self.workdir / "endpoints.json"


def wait_for_endpoints(system: RunningSystem) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not system.endpoints_file.exists():
        if system.process.poll() is not None:
            pytest.fail(f"cmms local up exited early:\n{system.log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no endpoints.json after {STARTUP_TIMEOUT_SECONDS}s")
        time.sleep(0.2)


def stop(system: RunningSystem) -> int:
    if system.process.poll() is None:
        system.process.send_signal(signal.SIGINT)
    try:
        return system.process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        # The test fails below; the whole group goes so that nothing outlives it.
        os.killpg(system.process.pid, signal.SIGKILL)
        system.process.wait()
        return -1


@pytest.fixture(scope="module")
def local_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    workdir = tmp_path_factory.mktemp("local")
    log = workdir.parent / f"{workdir.name}-local-up.log"
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
            ),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    system = RunningSystem(workdir, process, log)
    try:
        wait_for_endpoints(system)
        yield system
    finally:
        code = stop(system)
        leftovers = processes_mentioning(str(workdir))
        for pid in leftovers:
            os.kill(pid, signal.SIGKILL)
        assert code == 0, log.read_text()
        assert leftovers == [], "processes outlived cmms local up"


def measure(system: RunningSystem, protocol: LocalProtocol) -> dict[str, Any]:
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
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["state"] == "SUCCEEDED"
    assert sorted(document["data_providers"]) == [f"dataProviders/{e}" for e in DATA_PROVIDERS]
    (only,) = document["results"]
    assert only["signer"] == "duchies/aggregator"
    return document


def truth() -> Any:
    options = LocalOptions(workdir=Path("."), population_size=POPULATION)
    return true_reach_and_frequency(options, DATA_PROVIDERS, MAX_FREQUENCY)


def shares(result: dict[str, Any]) -> dict[int, float]:
    return {int(k): v for k, v in result.get("relative_frequency", {}).items()}


def test_endpoints_file_names_every_party(local_system: RunningSystem) -> None:
    endpoints = Endpoints.load(local_system.endpoints_file)
    assert set(endpoints.duchies) == {"aggregator", "worker1", "worker2"}
    assert endpoints.data_providers == list(DATA_PROVIDERS)
    assert endpoints.pki.trust_config.is_file()
    logs = {p.name for p in (local_system.workdir / "logs").iterdir()}
    assert {"kingdom.log", "worker1-herald.log", "aggregator-mill-scheduler.log"} <= logs


@pytest.mark.parametrize("protocol", [LocalProtocol.HMSS, LocalProtocol.TRUSTEE])
def test_shuffle_and_tee_protocols_without_noise_equal_the_truth(
    local_system: RunningSystem, protocol: LocalProtocol
) -> None:
    document = measure(local_system, protocol)
    assert (
        document["protocol"]
        == {
            LocalProtocol.HMSS: "honest_majority_share_shuffle",
            LocalProtocol.TRUSTEE: "trus_tee",
        }[protocol]
    )
    (result,) = document["results"]
    expected = truth()
    assert result["reach"] == expected.reach
    got = shares(result)
    for frequency, share in expected.relative_frequency.items():
        assert got.get(frequency, 0.0) == pytest.approx(share, abs=1e-9)


def test_llv2_estimates_reach_and_frequency(local_system: RunningSystem) -> None:
    document = measure(local_system, LocalProtocol.LLV2)
    assert document["protocol"] == "liquid_legions_v2"
    (result,) = document["results"]
    expected = truth()
    # A sketch with a million registers barely collides at this reach; the rest is DP noise.
    assert result["reach"] == pytest.approx(expected.reach, rel=0.1)
    got = shares(result)
    for frequency, share in expected.relative_frequency.items():
        assert got.get(frequency, 0.0) == pytest.approx(share, abs=0.05)


def test_reach_only_llv2_estimates_reach(local_system: RunningSystem) -> None:
    document = measure(local_system, LocalProtocol.RO_LLV2)
    assert document["protocol"] == "reach_only_liquid_legions_v2"
    (result,) = document["results"]
    assert "relative_frequency" not in result
    assert result["reach"] == pytest.approx(truth().reach, rel=0.1)
