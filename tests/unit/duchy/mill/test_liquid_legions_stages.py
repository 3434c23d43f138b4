"""LLv2 and reach-only LLv2 stages through the StageRunner: keys, confirmation checks, and whole
computations pumped between three duchies' mills, compared with the plaintext estimate."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
import numpy as np
import pytest

from cmms.api.internal.duchy.protocol.v1 import common_pb2
from cmms.api.internal.duchy.v1 import computation_details_pb2 as details_pb2
from cmms.api.public.v1 import crypto_pb2
from cmms.common import consent
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.crypto import elgamal, signing
from cmms.crypto.elgamal import PublicKey
from cmms.crypto.hybrid import HybridPrivateKey
from cmms.crypto.keystore import aead_from_cleartext_keyset, generate_kek_keyset
from cmms.crypto.randomness import SeededRandomSource
from cmms.duchy.mill.certificates import SignatureChecker
from cmms.duchy.mill.handlers import HandlerTable
from cmms.duchy.mill.liquid_legions import LiquidLegionsCommon, SecretKeySealer
from cmms.duchy.mill.llv2 import Llv2Handlers
from cmms.duchy.mill.reach_only_llv2 import ReachOnlyLlv2Handlers
from cmms.duchy.mill.tokens import Token, stage_of
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters
from cmms.protocols.llv2.simulation import plaintext_llv2
from cmms.protocols.llv2.stages import Stage as Llv2Stage
from cmms.protocols.reach_only_llv2.simulation import plaintext_reach_only_llv2
from cmms.protocols.stages import ProtocolType, stage_graph
from cmms.sketch import LiquidLegionsParams, LiquidLegionsSketch, ReachOnlyLiquidLegionsSketch
from cmms.sketch.encryption import encrypt_reach_only_sketch, encrypt_sketch
from cmms.testing.mill import LOCK_DURATION, MILL_ID, MillStageEnvironment

from .builders import liquid_legions_details, open_result, requisition_key, requisitions
from .conftest import OpenEnvironment

LLV2 = ProtocolType.LIQUID_LEGIONS_V2
RO_LLV2 = ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2
FIELDS = {LLV2: "liquid_legions_v2", RO_LLV2: "reach_only_liquid_legions_v2"}
GID = "ll-1"
RING = ("worker1", "worker2", "aggregator")
ROLES = {
    "worker1": common_pb2.NON_AGGREGATOR,
    "worker2": common_pb2.NON_AGGREGATOR,
    "aggregator": common_pb2.AGGREGATOR,
}
FULFILLED_AT = {"req0": "worker1", "req1": "worker2", "req2": "aggregator"}
SKETCH = LiquidLegionsParams(decay_rate=12, max_size=400, sampling_indicator_size=3)


def events(seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    people = generator.choice(600, size=int(generator.integers(20, 60)), replace=False)
    return np.repeat(people, generator.integers(1, 5, size=people.size))


@dataclass
class LlWorld:
    protocol: ProtocolType
    pki: PkiLayout
    envs: dict[str, MillStageEnvironment]
    table: dict[str, HandlerTable]

    async def token(self, duchy: str) -> Token:
        return await self.envs[duchy].get(GID)

    async def run(self, duchy: str) -> bool:
        """Let `duchy`'s mill claim and process one stage; carry what it sent to its peers."""
        env = self.envs[duchy]
        for other in RING:
            env.peers.stages[other] = stage_of(await self.token(other))
        token = await env.computations.claim_work(self.protocol, MILL_ID, LOCK_DURATION, ())
        if token is None:
            return False
        sent = len(env.peers.delivered)
        runner = env.runner(self.table[duchy], randomness=SeededRandomSource(f"{duchy}/mill"))
        await runner.process(token)
        for delivery in env.peers.delivered[sent:]:
            await self.envs[delivery.peer].receive(GID, duchy, delivery.payload)
        return True

    async def pump(self) -> None:
        """Run every duchy's mill until none has work left."""
        for _ in range(40):
            progressed = [await self.run(duchy) for duchy in RING]
            if not any(progressed):
                return
        raise AssertionError("the computation did not settle")


async def ll_world(
    protocol: ProtocolType,
    open_environment: OpenEnvironment,
    pki: PkiLayout,
    consumer_key: HybridPrivateKey,
    maximum_frequency: int = 1,
) -> LlWorld:
    envs = {duchy: await open_environment(duchy) for duchy in RING}
    trust_store = consent.trust_store_with_owners(
        pki.all_root_certs.read_bytes(), pki.load_trust_config()
    )
    kek = aead_from_cleartext_keyset(generate_kek_keyset())
    tables = {}
    for duchy, env in envs.items():
        # worker1 keeps its secret sealed under a KEK, the others in the clear.
        sealer = SecretKeySealer(kek if duchy == "worker1" else None)
        common = LiquidLegionsCommon(sealer, SignatureChecker(trust_store, env.clock))
        handlers = Llv2Handlers(common) if protocol is LLV2 else ReachOnlyLlv2Handlers(common)
        tables[duchy] = handlers.table()
        entries = requisitions(sorted(FULFILLED_AT))
        for entry in entries:
            entry.value.external_fulfilling_duchy_id = FULFILLED_AT[
                entry.key.external_requisition_id
            ]
        details = liquid_legions_details(
            consumer_key,
            FIELDS[protocol],
            ROLES[duchy],
            nonces=[1, 2, 3],
            maximum_frequency=maximum_frequency,
        )
        await env.create(GID, protocol, details, entries)
    return LlWorld(protocol, pki, envs, tables)


async def to_confirmation(world: LlWorld, *, forge: str | None = None) -> None:
    """Play the Heralds and EDPs: publish the ring, fulfil the requisitions, queue confirmation."""
    field = FIELDS[world.protocol]
    participants = []
    for duchy in RING:
        published = getattr(world.envs[duchy].participant(GID).requisition_params, field)
        signature = published.el_gamal_public_key_signature
        if duchy == forge:
            signature = signing.sign(
                signing.load_private_key(
                    world.pki.party(Principal.duchy("worker2")).cs_key.read_bytes()
                ),
                published.el_gamal_public_key,
            )
        participants.append(
            common_pb2.LiquidLegionsParticipant(
                duchy_id=duchy,
                public_key=crypto_pb2.ElGamalPublicKey.FromString(published.el_gamal_public_key),
                serialized_public_key=published.el_gamal_public_key,
                public_key_signature=signature,
                public_key_signature_algorithm_oid=published.el_gamal_public_key_signature_algorithm_oid,
                duchy_certificate_der=world.pki.party(Principal.duchy(duchy)).cs_cert.read_bytes(),
            )
        )
    full = PublicKey(elgamal.combine_public_keys([p.public_key.element for p in participants]))
    for duchy, env in world.envs.items():
        token = await env.get(GID)
        details = details_pb2.ComputationDetails()
        details.CopyFrom(token.computation_details)
        getattr(details, field).participants.extend(participants)
        token = await env.computations.update_details(token, details)
        for index, (rid, holder) in enumerate(sorted(FULFILLED_AT.items())):
            if holder != duchy:
                continue
            rng = SeededRandomSource(f"edp/{rid}")
            if world.protocol is LLV2:
                sketch = LiquidLegionsSketch.from_vids(events(index), SKETCH)
                payload = encrypt_sketch(sketch, full, 3, rng)
            else:
                ro = ReachOnlyLiquidLegionsSketch.from_vids(events(index), 12, 400)
                payload = encrypt_reach_only_sketch(ro, full, rng)
            path = await env.store_requisition(GID, rid, payload)
            token = await env.record_fulfillment(token, requisition_key(rid), path)
        await env.move_to(token, Llv2Stage.CONFIRMATION_PHASE)


@pytest.mark.parametrize(("protocol", "maximum_frequency"), [(LLV2, 3), (LLV2, 1), (RO_LLV2, 1)])
async def test_whole_computation_between_three_mills_matches_the_plaintext(
    protocol: ProtocolType,
    maximum_frequency: int,
    open_environment: OpenEnvironment,
    dev_pki: PkiLayout,
    consumer_key: HybridPrivateKey,
) -> None:
    world = await ll_world(protocol, open_environment, dev_pki, consumer_key, maximum_frequency)
    for duchy in RING:
        assert await world.run(duchy)
        participant = world.envs[duchy].participant(GID)
        published = getattr(participant.requisition_params, FIELDS[protocol])
        signing.verify(
            signing.load_certificate(dev_pki.party(Principal.duchy(duchy)).cs_cert.read_bytes()),
            published.el_gamal_public_key,
            published.el_gamal_public_key_signature,
            published.el_gamal_public_key_signature_algorithm_oid,
        )
        assert stage_of(await world.token(duchy)) == Llv2Stage.WAIT_REQUISITIONS_AND_KEY_SET
    sealed = (await world.token("worker1")).computation_details
    assert getattr(sealed, FIELDS[protocol]).local_el_gamal_key.WhichOneof("secret") == (
        "wrapped_secret_key"
    )

    await to_confirmation(world)
    for duchy in RING:
        assert await world.run(duchy)
        assert world.envs[duchy].participant(GID).state == 3  # READY
    assert stage_of(await world.token("aggregator")) == Llv2Stage.WAIT_SETUP_PHASE_INPUTS
    for worker in ("worker1", "worker2"):
        env = world.envs[worker]
        assert stage_of(await world.token(worker)) == Llv2Stage.WAIT_TO_START
        await env.move_to(await world.token(worker), Llv2Stage.SETUP_PHASE)

    await world.pump()

    graph = stage_graph(protocol)
    for duchy in RING:
        token = await world.token(duchy)
        assert graph.is_terminal(stage_of(token)), duchy
        assert token.computation_details.ending_state == details_pb2.ComputationDetails.SUCCEEDED
    [request] = world.envs["aggregator"].kingdom.results
    result = open_result(
        request, consumer_key, dev_pki.party(Principal.duchy("aggregator")).cs_cert.read_bytes()
    )
    if protocol is LLV2:
        expected = plaintext_llv2(
            ReachAndFrequencyParameters(
                decay_rate=12,
                max_size=400,
                duchies=3,
                requisitions=3,
                max_frequency=maximum_frequency,
            ),
            [LiquidLegionsSketch.from_vids(events(i), SKETCH) for i in range(3)],
        ).result
        assert result.reach.value == expected.reach
        assert dict(result.frequency.relative_frequency_distribution) == pytest.approx(
            expected.frequency
        )
        assert result.reach.methodology.liquid_legions_v2.max_size == 400
    else:
        outcome = plaintext_reach_only_llv2(
            LiquidLegionsParameters(decay_rate=12, max_size=400, duchies=3, requisitions=3),
            [ReachOnlyLiquidLegionsSketch.from_vids(events(i), 12, 400) for i in range(3)],
        )
        assert result.reach.value == outcome.reach


async def test_a_key_signed_by_another_duchy_fails_confirmation(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    world = await ll_world(LLV2, open_environment, dev_pki, consumer_key)
    for duchy in RING:
        await world.run(duchy)
    await to_confirmation(world, forge="worker1")

    await world.run("aggregator")

    env = world.envs["aggregator"]
    [(_, failure)] = env.kingdom.failures
    assert "duchies/worker1" in failure.error_message
    assert env.participant(GID).state != 3
    token = await world.token("aggregator")
    assert token.computation_details.ending_state == details_pb2.ComputationDetails.FAILED


async def test_initialization_reuses_the_stored_key_on_retry(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    world = await ll_world(LLV2, open_environment, dev_pki, consumer_key)
    env = world.envs["worker2"]
    env.kingdom.faults.add("get_participant", grpc.StatusCode.UNAVAILABLE, times=3)
    await world.run("worker2")
    first = (await world.token("worker2")).computation_details.liquid_legions_v2.local_el_gamal_key
    assert first.HasField("public_key")
    assert stage_of(await world.token("worker2")) == Llv2Stage.INITIALIZATION_PHASE

    env.clock.advance(LOCK_DURATION * 2)
    await world.run("worker2")

    token = await world.token("worker2")
    assert stage_of(token) == Llv2Stage.WAIT_REQUISITIONS_AND_KEY_SET
    assert token.computation_details.liquid_legions_v2.local_el_gamal_key == first
    published = env.participant(GID).requisition_params.liquid_legions_v2
    assert crypto_pb2.ElGamalPublicKey.FromString(published.el_gamal_public_key) == (
        first.public_key
    )


async def test_missing_data_for_a_requisition_fulfilled_here_fails_confirmation(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    world = await ll_world(LLV2, open_environment, dev_pki, consumer_key)
    for duchy in RING:
        await world.run(duchy)
    await to_confirmation(world)
    env = world.envs["worker2"]
    token = await env.get(GID)
    details = details_pb2.ComputationDetails()
    details.CopyFrom(token.computation_details)
    entries = [
        details_pb2.RequisitionEntry(key=r.external_key, value=r.details)
        for r in token.requisitions
    ]
    # The Kingdom says worker2 also holds req0, whose data went to worker1.
    entries[0].value.external_fulfilling_duchy_id = "worker2"
    await env.computations.update_details(token, details, entries)

    await world.run("worker2")

    [(_, failure)] = env.kingdom.failures
    assert "req0" in failure.error_message
