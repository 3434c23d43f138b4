"""Whole measurements through a real system on loopback: a Kingdom, three duchies (internal API,
async computation control, computation control, requisition fulfillment, herald and mills, each a
real server or daemon speaking mutual TLS), EDP simulators and a measurement consumer.

The mills run their production loop (`run_mill` with `--poll`); nothing is carried by the test.
The measurement's result must equal the plaintext answer (no noise is configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest

from cmms.api.public.v1 import certificates_pb2_grpc, measurements_pb2
from cmms.clients.certificates import KingdomCertificates as ClientCertificates
from cmms.clients.edp.population import Audience, Population, impression_vids, reach_and_frequency
from cmms.clients.edp.simulator import (
    EdpSimulator,
    KingdomStubs,
    OutcomeKind,
    SimulatorOptions,
    capabilities,
    duchy_stubs,
)
from cmms.clients.identity import PartyKeys
from cmms.clients.mc.client import Backoff, ConsumerStubs, MeasurementConsumerClient
from cmms.clients.mc.measurement import MeasurementKind, MeasurementParams
from cmms.common.grpc import ClientTls, ServerTls, secure_channel
from cmms.common.identity import Principal
from cmms.common.kms import create_local_kek_file
from cmms.common.pki import PkiLayout
from cmms.crypto.randomness import SeededRandomSource
from cmms.duchy.control.async_server import build_async_computation_control
from cmms.duchy.control.server import build_computation_control
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.fulfillment.server import build_requisition_fulfillment
from cmms.duchy.herald.runner import run_herald
from cmms.duchy.herald.settings import HeraldSettings
from cmms.duchy.internal_api.server import build_internal_api
from cmms.duchy.mill.process import build_mill, run_mill
from cmms.duchy.mill.settings import MillSettings
from cmms.duchy.settings import (
    AsyncComputationControlSettings,
    ComputationControlSettings,
    InternalApiSettings,
    RequisitionFulfillmentSettings,
)
from cmms.kingdom.server import KingdomServer
from cmms.kingdom.system.computations import StreamSettings
from cmms.protocols.stages import ProtocolType
from cmms.testing.duchy_stack import server_settings
from cmms.testing.kingdom import KingdomWorld, kingdom_test_config
from cmms.testing.pki import dev_pki
from cmms.testing.scratch_databases import sqlite_url

__all__ = ["dev_pki"]

pytestmark = pytest.mark.slow

Measurement = measurements_pb2.Measurement
DUCHIES = ("aggregator", "worker1", "worker2")
EDPS = ("edp1", "edp2")
MC = Principal.measurement_consumer("mc1")
POPULATION = Population(seed=7, size=3_000, overlap=0.5)
SETUP_CONFIG = {
    "llv2": {"aggregator": "aggregator"},
    "reach_only_llv2": {"aggregator": "aggregator"},
    "hmss": {
        "first_non_aggregator": "worker1",
        "second_non_aggregator": "worker2",
        "aggregator": "aggregator",
    },
    "trustee": {"duchy": "aggregator"},
}
# Everything must finish well within this; a hung stage fails the test instead of the run.
MEASUREMENT_TIMEOUT_SECONDS = 120
POLL_SECONDS = 0.05


@dataclass
class Duchy:
    duchy_id: str
    servers: dict[str, DuchyDeployable] = field(default_factory=dict)

    def port(self, server: str) -> int:
        return self.servers[server].ports.grpc


@dataclass
class System:
    pki: PkiLayout
    world: KingdomWorld
    kingdom: KingdomServer
    public_target: str
    system_target: str
    duchies: dict[str, Duchy]
    stop: asyncio.Event
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    def channel(self, target: str, principal: Principal) -> grpc.aio.Channel:
        channel = secure_channel(target, ClientTls.from_pki(self.pki, principal))
        self.channels.append(channel)
        return channel

    def edp(self, edp_id: str, *, hmss: bool, trustee: bool) -> EdpSimulator:
        principal = Principal.data_provider(edp_id)
        kingdom = self.channel(self.public_target, principal)
        fulfillment = {
            d: self.channel(f"127.0.0.1:{duchy.port('fulfillment')}", principal)
            for d, duchy in self.duchies.items()
        }
        return EdpSimulator(
            PartyKeys.from_pki(self.pki, principal),
            KingdomStubs.over(kingdom),
            ClientCertificates(certificates_pb2_grpc.CertificatesStub(kingdom)),
            duchy_stubs(fulfillment),
            POPULATION,
            Audience(edp_id, 0.4),
            SimulatorOptions(
                capabilities(hmss=hmss, trustee=trustee),
                measurement_consumers=(MC.resource_name,),
            ),
            SeededRandomSource(edp_id),
        )

    def consumer(self) -> MeasurementConsumerClient:
        channel = self.channel(self.public_target, MC)
        return MeasurementConsumerClient(
            PartyKeys.from_pki(self.pki, MC),
            ConsumerStubs.over(channel),
            ClientCertificates(certificates_pb2_grpc.CertificatesStub(channel)),
            SeededRandomSource("mc"),
        )

    def spawn(self, work: Awaitable[Any]) -> None:
        self.tasks.append(asyncio.ensure_future(work))

    def check_daemons(self) -> None:
        """A daemon that died is the test's failure, not a silent hang."""
        for task in self.tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise AssertionError("a duchy daemon failed") from task.exception()


async def start_duchy(pki: PkiLayout, directory: Path, duchy_id: str, kingdom_system: str) -> Duchy:
    principal = Principal.duchy(duchy_id)
    blobs = (directory / "blobs").as_uri()
    (directory / "blobs").mkdir(parents=True)
    duchy = Duchy(duchy_id)
    internal = await build_internal_api(
        InternalApiSettings(
            **server_settings(
                pki,
                principal,
                duchy_name=duchy_id,
                database_url=sqlite_url(directory),
                blob_storage_url=blobs,
                migrate=True,
            )
        )
    )
    await internal.start()
    duchy.servers["internal"] = internal
    internal_target = f"127.0.0.1:{internal.ports.grpc}"
    async_control = build_async_computation_control(
        AsyncComputationControlSettings(
            **server_settings(
                pki,
                principal,
                duchy_name=duchy_id,
                internal_api_target=internal_target,
                advance_initial_backoff_seconds=0.01,
            )
        )
    )
    await async_control.start()
    duchy.servers["async"] = async_control
    control = build_computation_control(
        ComputationControlSettings(
            **server_settings(
                pki,
                principal,
                duchy_name=duchy_id,
                internal_api_target=internal_target,
                async_computation_control_target=f"127.0.0.1:{async_control.ports.grpc}",
                blob_storage_url=blobs,
            )
        )
    )
    await control.start()
    duchy.servers["control"] = control
    fulfillment = build_requisition_fulfillment(
        RequisitionFulfillmentSettings(
            **server_settings(
                pki,
                principal,
                duchy_name=duchy_id,
                internal_api_target=internal_target,
                kingdom_system_api_target=kingdom_system,
                blob_storage_url=blobs,
            )
        )
    )
    await fulfillment.start()
    duchy.servers["fulfillment"] = fulfillment
    return duchy


def tls(pki: PkiLayout, duchy_id: str) -> dict[str, Any]:
    files = pki.party(Principal.duchy(duchy_id))
    return {
        "tls_cert_file": files.tls_cert,
        "tls_key_file": files.tls_key,
        "cert_collection_file": pki.all_root_certs,
    }


def start_daemons(system: System, directory: Path, duchy: Duchy) -> None:
    """The duchy's herald and one polling mill per protocol, as their commands run them."""
    pki, duchy_id = system.pki, duchy.duchy_id
    kek_uri = create_local_kek_file(directory / "kek.tink")
    blobs = (directory / "blobs").as_uri()
    setup = directory / "protocols_setup.json"
    setup.write_text(json.dumps(SETUP_CONFIG), encoding="utf-8")
    internal_target = f"127.0.0.1:{duchy.port('internal')}"
    herald = HeraldSettings(
        **tls(pki, duchy_id),
        duchy_name=duchy_id,
        kingdom_system_api_target=system.system_target,
        internal_api_target=internal_target,
        protocols_setup_config=setup,
        key_encryption_key_uri=kek_uri,
        private_key_store_url=blobs,
        initial_backoff_seconds=0.01,
        max_backoff_seconds=0.2,
        herald_id=f"{duchy_id}-herald",
    )
    system.spawn(run_herald(herald, system.stop))
    peers = {
        other: f"127.0.0.1:{system.duchies[other].port('control')}"
        for other in DUCHIES
        if other != duchy_id
    }
    for protocol in ProtocolType:
        if protocol is ProtocolType.UNSPECIFIED:
            continue
        settings = MillSettings(
            **tls(pki, duchy_id),
            duchy_name=duchy_id,
            mill_id=f"{duchy_id}-{protocol.name.lower().replace('_', '-')}-mill",
            computation_type=protocol.name,
            poll=True,
            polling_interval=timedelta(seconds=POLL_SECONDS),
            internal_api_target=internal_target,
            kingdom_system_api_target=system.system_target,
            kingdom_public_api_target=system.public_target,
            duchy_computation_control_target=peers,
            blob_storage_url=blobs,
            trust_config_file=pki.trust_config,
            consent_signaling_certificate_resource_name=system.world.certificate_names[duchy_id],
            consent_signaling_private_key_der_file=pki.party(Principal.duchy(duchy_id)).cs_key,
            key_encryption_key_uri=kek_uri,
            private_key_store_url=blobs,
        )
        system.spawn(_run_mill_until_stopped(settings, system.stop))


async def _run_mill_until_stopped(settings: MillSettings, stop: asyncio.Event) -> None:
    mill = build_mill(settings)
    try:
        await run_mill(mill, stop)
    finally:
        await mill.close()


@contextlib.asynccontextmanager
async def running_system(
    tmp_path: Path, pki: PkiLayout, **config_changes: object
) -> AsyncIterator[System]:
    stream = StreamSettings(poll_interval=POLL_SECONDS, max_lifetime=60)
    world = await KingdomWorld.open(
        sqlite_url(tmp_path, "kingdom.db"),
        pki,
        config=kingdom_test_config(**config_changes),
        stream=stream,
    )
    kingdom = KingdomServer(
        world.repositories,
        ServerTls.from_pki(pki, Principal.kingdom()),
        health_port=None,
        metrics_port=None,
        stream=stream,
        shutdown_grace_seconds=0.1,
    )
    ports = await kingdom.start()
    system_target = f"127.0.0.1:{ports.system.grpc}"
    system = System(
        pki,
        world,
        kingdom,
        f"127.0.0.1:{ports.public.grpc}",
        system_target,
        {},
        asyncio.Event(),
    )
    try:
        for duchy_id in DUCHIES:
            system.duchies[duchy_id] = await start_duchy(
                pki, tmp_path / duchy_id, duchy_id, system_target
            )
        for duchy_id in DUCHIES:
            start_daemons(system, tmp_path / duchy_id, system.duchies[duchy_id])
        yield system
    finally:
        system.stop.set()
        await asyncio.wait_for(asyncio.gather(*system.tasks, return_exceptions=True), 30)
        for channel in system.channels:
            await channel.close()
        for duchy in system.duchies.values():
            for server in reversed(list(duchy.servers.values())):
                await server.stop()
        await kingdom.stop()
        await world.close()


async def until(condition: Callable[[], Awaitable[bool]], system: System, what: str) -> None:
    """Wait for `condition`, checking on the daemons meanwhile; fail after the timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MEASUREMENT_TIMEOUT_SECONDS
    while not await condition():
        system.check_daemons()
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


async def measure(
    system: System,
    *,
    expected_protocol: str,
    hmss: bool = False,
    trustee: bool = False,
    params: MeasurementParams | None = None,
    exact: bool = True,
) -> None:
    edps = [system.edp(edp_id, hmss=hmss, trustee=trustee) for edp_id in EDPS]
    for edp in edps:
        await edp.start()
    consumer = system.consumer()
    params = params or MeasurementParams(max_frequency=4)
    measurement, _ = await consumer.create(params, [f"dataProviders/{e}" for e in EDPS])
    assert measurement.protocol_config.WhichOneof("protocol") == expected_protocol

    fulfilled: set[str] = set()

    async def all_fulfilled() -> bool:
        for edp_id, edp in zip(EDPS, edps, strict=True):
            for outcome in await edp.poll_once():
                assert outcome.kind is OutcomeKind.FULFILLED, outcome
                fulfilled.add(edp_id)
        return fulfilled == set(EDPS)

    await until(all_fulfilled, system, "the EDPs to fulfil their requisitions")

    done = await consumer.wait(
        measurement.name,
        backoff=Backoff(initial_seconds=POLL_SECONDS, multiplier=1.0),
        on_update=lambda _: system.check_daemons(),
        max_wait_seconds=MEASUREMENT_TIMEOUT_SECONDS,
    )
    assert done.state == Measurement.SUCCEEDED, done.failure
    (verified,) = await consumer.results(done)
    assert verified.signer == "duchies/aggregator"
    truth = reach_and_frequency(
        [impression_vids(POPULATION, Audience(e, 0.4)) for e in EDPS], params.max_frequency
    )
    result = verified.result
    if exact:
        assert result.reach.value == truth.reach
        assert dict(result.frequency.relative_frequency_distribution) == pytest.approx(
            {k: v for k, v in truth.relative_frequency.items() if v}
        )
        return
    # Liquid Legions estimates reach from a sketch, and its noise is always on.
    assert result.reach.value == pytest.approx(truth.reach, rel=0.1)
    if params.kind is MeasurementKind.REACH_AND_FREQUENCY:
        distribution = result.frequency.relative_frequency_distribution
        for frequency, share in truth.relative_frequency.items():
            assert distribution.get(frequency, 0.0) == pytest.approx(share, abs=0.1)


async def test_hmss_measurement_through_three_duchies(tmp_path: Path, dev_pki: PkiLayout) -> None:
    async with running_system(tmp_path, dev_pki, hmss__noise_mechanism="NONE") as system:
        await measure(system, hmss=True, expected_protocol="honest_majority_share_shuffle")


async def test_trustee_measurement_at_the_aggregator(tmp_path: Path, dev_pki: PkiLayout) -> None:
    async with running_system(
        tmp_path, dev_pki, trustee__enabled=True, trustee__noise_mechanism="NONE"
    ) as system:
        await measure(system, hmss=True, trustee=True, expected_protocol="trus_tee")


async def test_llv2_measurement_round_the_ring(tmp_path: Path, dev_pki: PkiLayout) -> None:
    async with running_system(tmp_path, dev_pki) as system:
        await measure(system, expected_protocol="liquid_legions_v2", exact=False)


async def test_reach_only_llv2_measurement(tmp_path: Path, dev_pki: PkiLayout) -> None:
    async with running_system(tmp_path, dev_pki) as system:
        await measure(
            system,
            expected_protocol="reach_only_liquid_legions_v2",
            params=MeasurementParams(kind=MeasurementKind.REACH),
            exact=False,
        )
