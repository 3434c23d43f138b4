"""EDP simulator and MC client against a real in-process Kingdom (mTLS on localhost).

Direct measurements need no duchy: the EDP fulfils at the Kingdom and the MC verifies the EDP's
signed result. HMSS runs up to the duchy boundary: the duchies' key publication is played through
the system API, and a stand-in RequisitionFulfillment receives the uploads and reports them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from cmms.api.public.v1 import (
    certificates_pb2_grpc,
    crypto_pb2,
    frequency_vector_pb2,
    measurements_pb2,
    requisition_fulfillment_pb2,
    requisitions_pb2,
)
from cmms.api.system.v1 import computation_participants_pb2 as participants_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.api.system.v1 import requisitions_pb2 as system_requisitions_pb2
from cmms.clients.certificates import KingdomCertificates
from cmms.clients.edp.payloads import KmsKey
from cmms.clients.edp.population import Audience, Population, impression_vids, reach_and_frequency
from cmms.clients.edp.runner import population_of, run
from cmms.clients.edp.settings import EdpSettings
from cmms.clients.edp.simulator import (
    EdpSimulator,
    KingdomStubs,
    OutcomeKind,
    SimulatorOptions,
    capabilities,
)
from cmms.clients.endpoints import Endpoints, KingdomEndpoints
from cmms.clients.identity import PartyKeys
from cmms.clients.mc.client import (
    Backoff,
    ConsumerStubs,
    MeasurementConsumerClient,
    MeasurementConsumerError,
)
from cmms.clients.mc.display import outcome_document
from cmms.clients.mc.measure import ExpectedProtocol, measure
from cmms.clients.mc.measurement import MeasurementKind, MeasurementParams
from cmms.common import consent
from cmms.common.grpc import ClientTls, ServerTls, secure_channel
from cmms.common.identity import Principal, acting_as
from cmms.common.kms import LocalFileKmsClient, create_local_kek_file
from cmms.common.pki import PkiLayout
from cmms.crypto import elgamal, group, sharing, signing
from cmms.crypto.envelope import open_envelope
from cmms.crypto.hybrid import HPKE_X25519, HybridPrivateKey
from cmms.crypto.randomness import SeededRandomSource
from cmms.kingdom.config import KingdomConfig
from cmms.kingdom.server import KingdomServer
from cmms.sketch import (
    SamplingInterval,
    VidIndexMap,
    build_frequency_vector,
    ll_vid_sampling_mask,
    register_index,
)
from cmms.testing.kingdom import Flow, KingdomWorld, kingdom_test_config
from cmms.testing.pki import dev_pki

__all__ = ["dev_pki"]

Measurement = measurements_pb2.Measurement
FulfillRequest = requisition_fulfillment_pb2.FulfillRequisitionRequest
POPULATION = Population(seed=2024, size=5_000, overlap=0.5)
MC = Principal.measurement_consumer("mc1")


@dataclass
class Stack:
    world: KingdomWorld
    target: str
    pki: PkiLayout
    channels: list[object] = field(default_factory=list)

    def channel(self, principal: Principal):  # type: ignore[no-untyped-def]
        channel = secure_channel(self.target, ClientTls.from_pki(self.pki, principal))
        self.channels.append(channel)
        return channel

    def edp(
        self,
        edp_id: str,
        duchies: dict[str, object] | None = None,
        *,
        hmss: bool = False,
        trustee: bool = False,
        kms: KmsKey | None = None,
    ) -> EdpSimulator:
        principal = Principal.data_provider(edp_id)
        channel = self.channel(principal)
        return EdpSimulator(
            PartyKeys.from_pki(self.pki, principal),
            KingdomStubs.over(channel),
            KingdomCertificates(certificates_pb2_grpc.CertificatesStub(channel)),
            duchies or {},  # type: ignore[arg-type]
            POPULATION,
            Audience(edp_id, 0.3),
            SimulatorOptions(
                capabilities(hmss=hmss, trustee=trustee),
                measurement_consumers=(MC.resource_name,),
                kms=kms,
            ),
            SeededRandomSource(edp_id),
        )

    def consumer(self) -> MeasurementConsumerClient:
        channel = self.channel(MC)
        return MeasurementConsumerClient(
            PartyKeys.from_pki(self.pki, MC),
            ConsumerStubs.over(channel),
            KingdomCertificates(certificates_pb2_grpc.CertificatesStub(channel)),
            SeededRandomSource("mc"),
        )


@contextlib.asynccontextmanager
async def open_stack(
    tmp_path: Path, pki: PkiLayout, config: KingdomConfig | None = None
) -> AsyncIterator[Stack]:
    world = await KingdomWorld.open(
        f"sqlite+aiosqlite:///{tmp_path / 'kingdom.db'}", pki, config=config
    )
    server = KingdomServer(
        world.repositories,
        ServerTls.from_pki(pki, Principal.kingdom()),
        health_port=None,
        metrics_port=None,
        shutdown_grace_seconds=0.1,
    )
    ports = await server.start()
    stack = Stack(world, f"127.0.0.1:{ports.public.grpc}", pki)
    try:
        yield stack
    finally:
        for channel in stack.channels:
            await channel.close()  # type: ignore[attr-defined]
        await server.stop()
        await world.close()


@pytest.fixture
async def stack(tmp_path: Path, dev_pki: PkiLayout) -> AsyncIterator[Stack]:
    async with open_stack(tmp_path, dev_pki) as opened:
        yield opened


async def _no_sleep(_: float) -> None:
    return None


async def test_direct_reach_and_frequency_end_to_end(stack: Stack) -> None:
    edp = stack.edp("edp1")
    await edp.start()
    consumer = stack.consumer()
    measurement, _ = await consumer.create(
        MeasurementParams(max_frequency=5), ["dataProviders/edp1"], request_id="direct-1"
    )
    assert measurement.protocol_config.WhichOneof("protocol") == "direct"
    assert measurement.state == Measurement.AWAITING_REQUISITION_FULFILLMENT

    outcomes = await edp.poll_once()
    assert [o.kind for o in outcomes] == [OutcomeKind.FULFILLED]
    assert await edp.poll_once() == []  # handled once

    seen: list[int] = []
    done = await consumer.wait(
        measurement.name, sleep=_no_sleep, on_update=lambda m: seen.append(m.state)
    )
    assert done.state == Measurement.SUCCEEDED and seen[-1] == Measurement.SUCCEEDED
    (verified,) = await consumer.results(done)
    assert verified.signer == "dataProviders/edp1"
    truth = reach_and_frequency([impression_vids(POPULATION, Audience("edp1", 0.3))], 5)
    assert verified.result.reach.value == truth.reach
    assert dict(verified.result.frequency.relative_frequency_distribution) == pytest.approx(
        truth.relative_frequency
    )
    # The same request id gives back the same measurement.
    again, _ = await consumer.create(
        MeasurementParams(max_frequency=5), ["dataProviders/edp1"], request_id="direct-1"
    )
    assert again.name == measurement.name


async def test_refused_requisition_fails_the_measurement(stack: Stack) -> None:
    edp = stack.edp("edp1")
    await edp.start()
    consumer = stack.consumer()
    params = MeasurementParams(event_filter="person.gender == 1")
    measurement, _ = await consumer.create(params, ["dataProviders/edp1"])
    outcomes = await edp.poll_once()
    assert [o.kind for o in outcomes] == [OutcomeKind.REFUSED]
    done = await consumer.wait(measurement.name, sleep=_no_sleep)
    assert done.state == Measurement.FAILED
    assert done.failure.reason == Measurement.Failure.REQUISITION_REFUSED


@dataclass
class FakeDuchy:
    """Stands in for a duchy's RequisitionFulfillment: keeps the upload, tells the Kingdom."""

    duchy_id: str
    world: KingdomWorld
    computation: computation_pb2.Computation | None = None
    uploads: list[tuple[FulfillRequest.Header, bytes]] = field(default_factory=list)

    async def FulfillRequisition(
        self, requests: Iterable[FulfillRequest]
    ) -> requisition_fulfillment_pb2.FulfillRequisitionResponse:
        stream = list(requests)
        header = stream[0].header
        assert all(r.WhichOneof("payload") == "body_chunk" for r in stream[1:])
        self.uploads.append((header, b"".join(r.body_chunk.data for r in stream[1:])))
        assert self.computation is not None
        requisition_id = header.name.rsplit("/", 1)[1]
        system_name = next(
            r.name for r in self.computation.requisitions if r.name.endswith(requisition_id)
        )
        with acting_as(Principal.duchy(self.duchy_id)):
            await self.world.servicers.system_requisitions.FulfillRequisition(
                system_requisitions_pb2.FulfillRequisitionRequest(
                    name=system_name, nonce=header.nonce, etag=header.etag
                ),
                None,
            )
        return requisition_fulfillment_pb2.FulfillRequisitionResponse(
            state=requisitions_pb2.Requisition.FULFILLED
        )


@dataclass
class PublishedKeys:
    hpke: dict[str, HybridPrivateKey] = field(default_factory=dict)
    el_gamal: dict[str, elgamal.KeyPair] = field(default_factory=dict)


async def _publish_duchy_keys(
    stack: Stack, computation: computation_pb2.Computation
) -> PublishedKeys:
    """What the duchies' mills do: sign fresh per-computation keys and send them as params."""
    protocol = computation.mpc_protocol_config.WhichOneof("protocol")
    published = PublishedKeys()
    random = SeededRandomSource("duchy keys")
    for participant in computation.computation_participants:
        duchy = participant.name.rsplit("/", 1)[1]
        signer = signing.load_private_key(
            stack.pki.party(Principal.duchy(duchy)).cs_key.read_bytes()
        )
        params = computation_pb2.ComputationParticipant.RequisitionParams(
            duchy_certificate=stack.world.certificate_names[duchy]
        )
        if protocol == "honest_majority_share_shuffle":
            hmss = params.honest_majority_share_shuffle
            hmss.SetInParent()
            if duchy != "aggregator":
                published.hpke[duchy] = HybridPrivateKey.generate(HPKE_X25519)
                signed = consent.sign_message(
                    consent.encryption_public_key(published.hpke[duchy].public_key().keyset()),
                    signer,
                )
                hmss.tink_public_key = signed.message.value
                hmss.tink_public_key_signature = signed.signature
                hmss.tink_public_key_signature_algorithm_oid = signed.signature_algorithm_oid
        elif protocol in ("liquid_legions_v2", "reach_only_liquid_legions_v2"):
            pair = published.el_gamal[duchy] = elgamal.generate_key_pair(random)
            key = crypto_pb2.ElGamalPublicKey(
                elliptic_curve_id=415, generator=group.GENERATOR, element=pair.public
            )
            signed = consent.sign_message(key, signer)
            ll = getattr(params, protocol)
            ll.el_gamal_public_key = signed.message.value
            ll.el_gamal_public_key_signature = signed.signature
            ll.el_gamal_public_key_signature_algorithm_oid = signed.signature_algorithm_oid
        else:
            params.trus_tee.SetInParent()
        with acting_as(Principal.duchy(duchy)):
            await stack.world.servicers.participants.SetParticipantRequisitionParams(
                participants_pb2.SetParticipantRequisitionParamsRequest(
                    name=participant.name, requisition_params=params
                ),
                None,
            )
    return published


async def _open_requisitions(
    stack: Stack, measurement: Measurement, duchies: dict[str, FakeDuchy]
) -> PublishedKeys:
    flow = Flow(stack.world)
    computation = await flow.computation_of(measurement)
    keys = await _publish_duchy_keys(stack, computation)
    computation = await flow.refresh(computation)
    for duchy in duchies.values():
        duchy.computation = computation
    return keys


async def test_hmss_uploads_recombine_to_each_edps_frequency_vector(stack: Stack) -> None:
    duchies = {d: FakeDuchy(d, stack.world) for d in ("worker1", "worker2")}
    edps = {e: stack.edp(e, duchies, hmss=True) for e in ("edp1", "edp2")}  # type: ignore[arg-type]
    for edp in edps.values():
        await edp.start()
    consumer = stack.consumer()
    measurement, _ = await consumer.create(MeasurementParams(max_frequency=5))
    assert measurement.protocol_config.WhichOneof("protocol") == "honest_majority_share_shuffle"
    hpke = (await _open_requisitions(stack, measurement, duchies)).hpke
    flow = Flow(stack.world)

    for edp in edps.values():
        assert [o.kind for o in await edp.poll_once()] == [OutcomeKind.FULFILLED]
    assert (await flow.get_measurement(measurement.name)).state == Measurement.COMPUTING

    uploads = [(d, u) for d, duchy in duchies.items() for u in duchy.uploads]
    assert len(uploads) == 2
    index_map = VidIndexMap(POPULATION.vids)
    interval = SamplingInterval.for_population(len(index_map), 0.0, 1.0)
    combined = np.zeros(interval.register_count, dtype=np.int64)
    for fulfilling, (header, body) in uploads:
        edp_id = header.name.split("/")[1]
        peer = "worker2" if fulfilling == "worker1" else "worker1"
        signed_seed = consent.decrypt_signed(
            header.honest_majority_share_shuffle.secret_seed, hpke[peer]
        )
        seed = consent.unpack(signed_seed, crypto_pb2.RandomSeed).data
        data_share = np.array(frequency_vector_pb2.FrequencyVector.FromString(body).data)
        vector = sharing.add_mod(
            data_share, sharing.expand_seed_share(seed, data_share.size, 127), 127
        )
        expected = build_frequency_vector(
            index_map, interval, impression_vids(POPULATION, Audience(edp_id, 0.3)), 5
        )
        np.testing.assert_array_equal(vector, expected)
        combined += vector
    truth = reach_and_frequency(
        [impression_vids(POPULATION, Audience(e, 0.3)) for e in edps], max_frequency=10
    )
    assert int(np.count_nonzero(combined)) == truth.reach


async def test_measure_command_logic_with_an_edp_daemon(stack: Stack, tmp_path: Path) -> None:
    endpoints = Endpoints(
        pki_dir=stack.pki.directory,
        kingdom=KingdomEndpoints(public_api=stack.target, system_api="unused:0"),
        measurement_consumers=["mc1"],
        data_providers=["edp1"],
    )
    endpoints.write(tmp_path / "endpoints.json")
    settings = EdpSettings(
        edp_id="edp1",
        kingdom_target=stack.target,
        pki_dir=stack.pki.directory,
        measurement_consumers=(MC.resource_name,),
        population_size=POPULATION.size,
        population_seed=POPULATION.seed,
        overlap=POPULATION.overlap,
        poll_interval_seconds=0.05,
    )
    # One pass of the daemon registers the event group the consumer needs.
    assert await run(settings, asyncio.Event(), once=True) == 0
    stop = asyncio.Event()
    daemon = asyncio.create_task(run(settings, stop))
    states: list[int] = []
    try:
        outcome = await measure(
            Endpoints.load(tmp_path / "endpoints.json"),
            MeasurementParams(kind=MeasurementKind.REACH),
            protocol=ExpectedProtocol.DIRECT,
            backoff=Backoff(initial_seconds=0.02, multiplier=1.5, maximum_seconds=0.2),
            max_wait_seconds=60,
            on_update=lambda m: states.append(m.state),
        )
    finally:
        stop.set()
        await daemon
    assert states[0] == Measurement.AWAITING_REQUISITION_FULFILLMENT
    assert states[-1] == Measurement.SUCCEEDED
    population, audience = population_of(settings)
    truth = reach_and_frequency([impression_vids(population, audience)], 1)
    assert [r.result.reach.value for r in outcome.results] == [truth.reach]
    assert outcome_document(outcome)["results"][0]["reach"] == truth.reach


async def test_measure_cancels_when_the_kingdom_picks_another_protocol(stack: Stack) -> None:
    edp = stack.edp("edp1")
    await edp.start()
    endpoints = Endpoints(
        pki_dir=stack.pki.directory,
        kingdom=KingdomEndpoints(public_api=stack.target, system_api="unused:0"),
        measurement_consumers=["mc1"],
    )
    with pytest.raises(MeasurementConsumerError, match="cancelled"):
        await measure(endpoints, MeasurementParams(), protocol=ExpectedProtocol.HMSS)


async def test_llv2_sketches_reach_a_participant_and_open_under_the_published_keys(
    stack: Stack,
) -> None:
    duchies = {d: FakeDuchy(d, stack.world) for d in ("aggregator", "worker1", "worker2")}
    # No HMSS capability: two EDPs asking for R&F get LLv2.
    edps = {e: stack.edp(e, duchies) for e in ("edp1", "edp2")}  # type: ignore[arg-type]
    for edp in edps.values():
        await edp.start()
    consumer = stack.consumer()
    params = MeasurementParams(max_frequency=4, vid_sampling_start=0.2, vid_sampling_width=0.5)
    measurement, _ = await consumer.create(params)
    assert measurement.protocol_config.WhichOneof("protocol") == "liquid_legions_v2"
    keys = await _open_requisitions(stack, measurement, duchies)
    for edp in edps.values():
        assert [o.kind for o in await edp.poll_once()] == [OutcomeKind.FULFILLED]
    assert (await Flow(stack.world).get_measurement(measurement.name)).state == (
        Measurement.COMPUTING
    )
    secret = sum(pair.secret for pair in keys.el_gamal.values()) % group.ORDER
    uploads = [u for duchy in duchies.values() for u in duchy.uploads]
    assert len(uploads) == 2
    for header, body in uploads:
        assert header.WhichOneof("protocol") is None
        assert len(body) % 198 == 0 and body
        with elgamal.decode_ciphertexts(body, offset=0, stride=198) as indexes:
            points = elgamal.decrypt_to_bytes(indexes, secret)
        sketch_params = measurement.protocol_config.liquid_legions_v2.sketch_params
        edp_id = header.name.split("/")[1]
        sampled = impression_vids(POPULATION, Audience(edp_id, 0.3))
        sampled = sampled[ll_vid_sampling_mask(sampled, 0.2, 0.5)]
        expected = sorted(
            {
                register_index(int(v), sketch_params.decay_rate, sketch_params.max_size)
                for v in sampled
            }
        )
        assert points == [group.hash_to_curve(str(i).encode()) for i in expected]


async def test_trustee_upload_is_envelope_encrypted_under_the_kms_key(
    tmp_path: Path, dev_pki: PkiLayout
) -> None:
    config = kingdom_test_config(trustee__enabled=True)
    async with open_stack(tmp_path, dev_pki, config) as stack:
        kms = KmsKey(LocalFileKmsClient(), create_local_kek_file(tmp_path / "kek.tink"))
        duchies = {"aggregator": FakeDuchy("aggregator", stack.world)}
        edps = {
            e: stack.edp(e, duchies, hmss=True, trustee=True, kms=kms)  # type: ignore[arg-type]
            for e in ("edp1", "edp2")
        }
        for edp in edps.values():
            await edp.start()
        measurement, _ = await stack.consumer().create(MeasurementParams(max_frequency=5))
        assert measurement.protocol_config.WhichOneof("protocol") == "trus_tee"
        await _open_requisitions(stack, measurement, duchies)
        for edp in edps.values():
            assert [o.kind for o in await edp.poll_once()] == [OutcomeKind.FULFILLED]
        index_map = VidIndexMap(POPULATION.vids)
        interval = SamplingInterval.for_population(len(index_map), 0.0, 1.0)
        for header, body in duchies["aggregator"].uploads:
            envelope = header.trus_tee.envelope_encryption
            dek = open_envelope(
                LocalFileKmsClient(), envelope.kms_kek_uri, envelope.encrypted_dek.data
            )
            vector = np.frombuffer(b"".join(dek.decrypt_chunks([body])), dtype=np.uint8)
            edp_id = header.name.split("/")[1]
            expected = build_frequency_vector(
                index_map, interval, impression_vids(POPULATION, Audience(edp_id, 0.3)), 5
            )
            np.testing.assert_array_equal(vector, expected)
        assert len(duchies["aggregator"].uploads) == 2
