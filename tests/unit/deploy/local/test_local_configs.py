"""The local system's configs, URLs and command lines (no processes started)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cmms.clients.endpoints import Endpoints
from cmms.common.durations import parse_duration
from cmms.common.errors import UserError
from cmms.deploy.local.configs import DUCHIES, kingdom_config, protocols_setup_config
from cmms.deploy.local.layout import LocalLayout
from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.ports import PortPool
from cmms.deploy.local.processes import (
    DUCHY_PORT_COUNT,
    HERALD_STREAM_MAX_FAILURES,
    KINGDOM_PORT_COUNT,
    DuchyPorts,
    KingdomPorts,
    Topology,
    edp_spec,
    herald_spec,
    mill_scheduler_spec,
)
from cmms.deploy.local.routing import MEASUREMENT_CONSUMERS, LocalProtocol
from cmms.deploy.local.storage import database_urls, duchy_blob_urls
from cmms.deploy.local.system import DATA_PROVIDERS, endpoints_of
from cmms.kingdom.config import NoiseMechanism
from cmms.kingdom.db.records import Capabilities, Protocol
from cmms.kingdom.planning import EdpFacts, MeasurementType, choose_duchies, choose_protocol

EXPECTED = {
    LocalProtocol.LLV2: Protocol.LLV2,
    LocalProtocol.RO_LLV2: Protocol.REACH_ONLY_LLV2,
    LocalProtocol.HMSS: Protocol.HMSS,
    LocalProtocol.TRUSTEE: Protocol.TRUSTEE,
}


def edps() -> list[EdpFacts]:
    everything = Capabilities(hmss_supported=True, trustee_supported=True)
    return [EdpFacts(e, everything, ()) for e in DATA_PROVIDERS]


@pytest.mark.parametrize("protocol", list(LocalProtocol))
def test_the_consumer_and_type_decide_the_protocol(protocol: LocalProtocol) -> None:
    config = kingdom_config(noise=True)
    kind = MeasurementType(protocol.measurement_type.upper().replace("-", "_"))
    choice = choose_protocol(config, kind, protocol.measurement_consumer, edps())
    assert choice.protocol is EXPECTED[protocol]


def test_liquid_legions_runs_round_all_three_duchies() -> None:
    config = kingdom_config(noise=True)
    for protocol in (Protocol.LLV2, Protocol.REACH_ONLY_LLV2):
        chosen = choose_duchies(config, protocol, edps(), datetime.now(UTC))
        assert sorted(chosen) == sorted(DUCHIES)


def test_noise_off_turns_off_hmss_and_trustee_noise_only() -> None:
    noisy, quiet = kingdom_config(noise=True), kingdom_config(noise=False)
    assert quiet.hmss is not None and quiet.trustee is not None
    assert quiet.hmss.noise_mechanism is NoiseMechanism.NONE
    assert quiet.trustee.noise_mechanism is NoiseMechanism.NONE
    assert noisy.hmss is not None and noisy.hmss.noise_mechanism is not NoiseMechanism.NONE
    assert quiet.llv2 == noisy.llv2


def test_protocols_setup_matches_the_kingdom() -> None:
    setup, config = protocols_setup_config(), kingdom_config(noise=True)
    assert setup.hmss is not None and config.hmss is not None
    assert setup.hmss.aggregator == config.hmss.aggregator == config.llv2.aggregator
    assert setup.trustee is not None and config.trustee is not None
    assert setup.trustee.duchy == config.trustee.duchy


def test_sqlite_gives_each_party_a_file(tmp_path: Path) -> None:
    urls = database_urls("sqlite", tmp_path, ["kingdom", "worker1"])
    assert urls == {
        "kingdom": f"sqlite:///{tmp_path.resolve()}/kingdom.db",
        "worker1": f"sqlite:///{tmp_path.resolve()}/worker1.db",
    }


def test_postgres_gives_each_party_a_database(tmp_path: Path) -> None:
    urls = database_urls("postgresql://me:pw@db:5432/demo", tmp_path, ["kingdom", "worker-1"])
    assert urls == {
        "kingdom": "postgresql://me:pw@db:5432/demo_kingdom",
        "worker-1": "postgresql://me:pw@db:5432/demo_worker_1",
    }
    assert database_urls("postgresql://db", tmp_path, ["x"]) == {"x": "postgresql://db/cmms_x"}
    with pytest.raises(UserError):
        database_urls("mysql://db", tmp_path, ["x"])


def test_each_duchy_gets_its_own_blob_folder(tmp_path: Path) -> None:
    default = duchy_blob_urls(None, tmp_path / "blobs", ["worker1"])
    assert default == {"worker1": (tmp_path / "blobs").resolve().as_uri() + "/worker1"}
    assert duchy_blob_urls("s3://bucket/cmms/?region=x", tmp_path, ["aggregator"]) == {
        "aggregator": "s3://bucket/cmms/aggregator?region=x"
    }
    with pytest.raises(UserError, match="blob-storage"):
        duchy_blob_urls("memory://x", tmp_path, ["worker1"])


def topology(tmp_path: Path) -> Topology:
    pool = PortPool(KINGDOM_PORT_COUNT + DUCHY_PORT_COUNT * len(DUCHIES))
    layout = LocalLayout(tmp_path)
    return Topology(
        layout=layout,
        options=LocalOptions(workdir=tmp_path, population_size=1234, overlap=0.25),
        kingdom=KingdomPorts.take(pool),
        duchies={d: DuchyPorts.take(pool) for d in DUCHIES},
        data_providers=DATA_PROVIDERS,
        database_urls=database_urls("sqlite", tmp_path, ["kingdom", *DUCHIES]),
        blob_urls=duchy_blob_urls(None, layout.blobs, DUCHIES),
        duchy_certificates={d: f"duchies/{d}/certificates/c" for d in DUCHIES},
    )


def test_mill_jobs_know_every_peer_and_their_own_certificate(tmp_path: Path) -> None:
    world = topology(tmp_path)
    argv = mill_scheduler_spec(world, "worker1").argv
    mill_args = [a.removeprefix("--mill-args=") for a in argv if a.startswith("--mill-args=")]
    peers = [a for a in mill_args if a.startswith("--duchy-computation-control-target=")]
    assert sorted(p.split("=")[1] for p in peers) == ["aggregator", "worker2"]
    assert (
        "--consent-signaling-certificate-resource-name=duchies/worker1/certificates/c" in mill_args
    )


def test_edps_share_the_population_and_serve_every_consumer(tmp_path: Path) -> None:
    spec = edp_spec(topology(tmp_path), "edp2")
    assert "--population-size=1234" in spec.argv
    assert "--overlap=0.25" in spec.argv
    consumers = [a for a in spec.argv if a.startswith("--measurement-consumer=")]
    assert len(consumers) == len(MEASUREMENT_CONSUMERS)
    assert spec.probe is not None and "edp2" in spec.probe.description


def test_endpoints_file_is_valid_for_clients(tmp_path: Path) -> None:
    world = topology(tmp_path)
    path = tmp_path / "endpoints.json"
    endpoints_of(world).write(path)
    loaded = Endpoints.load(path)
    assert loaded.pki_dir == tmp_path / "pki"
    assert set(loaded.duchies) == set(DUCHIES)
    assert loaded.measurement_consumers == list(MEASUREMENT_CONSUMERS)
    assert json.loads(path.read_text())["kingdom"]["public_api"] == world.kingdom_public


def test_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalOptions(workdir=tmp_path, population_size=0)
    with pytest.raises(ValueError):
        LocalOptions(workdir=tmp_path, overlap=2)


def test_mill_concurrency_and_lock_duration_reach_the_scheduler_and_its_jobs(
    tmp_path: Path,
) -> None:
    world = topology(tmp_path)
    options = LocalOptions(
        workdir=tmp_path, mill_maximum_concurrency=4, work_lock_duration=timedelta(seconds=20)
    )
    world = Topology(**{**world.__dict__, "options": options})
    argv = mill_scheduler_spec(world, "aggregator").argv
    for mill_type in ("llv2", "hmss", "trustee"):
        assert f"--{mill_type}-maximum-concurrency=4" in argv
        assert f"--{mill_type}-work-lock-duration=20s" in argv
    mill_args = [a.removeprefix("--mill-args=") for a in argv if a.startswith("--mill-args=")]
    (lock,) = [a for a in mill_args if a.startswith("--work-lock-duration=")]
    assert parse_duration(lock.split("=", 1)[1]) == timedelta(seconds=20)
    defaults = mill_scheduler_spec(topology(tmp_path), "aggregator").argv
    assert "--hmss-maximum-concurrency=1" in defaults
    assert "--hmss-work-lock-duration=5m" in defaults


@pytest.mark.parametrize(
    "bad",
    [{"mill_maximum_concurrency": 0}, {"work_lock_duration": timedelta(0)}],
)
def test_mill_settings_are_checked(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        LocalOptions(workdir=tmp_path, **bad)  # type: ignore[arg-type]


def test_heralds_ride_a_kingdom_restart_out(tmp_path: Path) -> None:
    argv = herald_spec(topology(tmp_path), "worker2").argv
    assert f"--stream-max-failures={HERALD_STREAM_MAX_FAILURES}" in argv
    assert "--max-backoff-seconds=5" in argv
