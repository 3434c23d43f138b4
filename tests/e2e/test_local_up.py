"""`cmms local up` as a user runs it, measured with `cmms mc measure` for every protocol.

One system (noise off) serves every test of this module. HMSS and TrusTee compute on the exact
frequency vectors, so with their noise off the result must equal the truth counted in the clear;
Liquid Legions estimates from a sketch and always adds its protocol's noise, so LLv2 and
reach-only LLv2 are checked within a tolerance.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cmms.clients.endpoints import Endpoints
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import DATA_PROVIDERS
from cmms.testing.local_up_cli import (
    RunningSystem,
    assert_exact,
    local_up,
    measure,
    shares,
    truth,
)

pytestmark = pytest.mark.e2e

POPULATION = 3_000


@pytest.fixture(scope="module")
def local_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    with local_up(tmp_path_factory.mktemp("local"), population=POPULATION) as system:
        yield system


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
    assert_exact(document, POPULATION)


def test_llv2_estimates_reach_and_frequency(local_system: RunningSystem) -> None:
    document = measure(local_system, LocalProtocol.LLV2)
    assert document["protocol"] == "liquid_legions_v2"
    (result,) = document["results"]
    expected = truth(POPULATION)
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
    assert result["reach"] == pytest.approx(truth(POPULATION).reach, rel=0.1)
