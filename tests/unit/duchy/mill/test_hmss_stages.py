"""HMSS stages through the StageRunner: each role's stages, peer-stage checks, idempotent retries,
and one whole computation whose payloads the test carries between three duchies' mills."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest

from cmms.api.internal.duchy.protocol.v1 import common_pb2, hmss_pb2
from cmms.api.internal.duchy.v1 import computation_details_pb2 as details_pb2
from cmms.api.public.v1 import crypto_pb2
from cmms.common import consent
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.crypto import signing
from cmms.crypto.hybrid import HPKE_X25519, HybridPrivateKey
from cmms.crypto.keystore import aead_from_cleartext_keyset, generate_kek_keyset
from cmms.crypto.randomness import SeededRandomSource
from cmms.crypto.sharing import split
from cmms.duchy.mill.certificates import SignatureChecker
from cmms.duchy.mill.hmss import HmssHandlers
from cmms.duchy.mill.tokens import Token, output_slots, stage_of
from cmms.duchy.private_keys import PrivateKeyStore
from cmms.protocols.hmss.payloads import (
    decode_aggregation_phase_input,
    decode_shuffle_phase_input,
    encode_aggregation_phase_input,
    encode_frequency_vector,
)
from cmms.protocols.hmss.simulation import HmssConfig, hmss_ground_truth
from cmms.protocols.hmss.stages import Stage
from cmms.protocols.measurement import MeasurementType
from cmms.protocols.stages import ProtocolType
from cmms.storage import ComputationBlobKey, computation_store
from cmms.testing.mill import LOCK_DURATION, DictCertificates, MillStageEnvironment

from .builders import (
    hmss_details,
    hmss_fulfillment,
    open_result,
    requisition_key,
    requisitions,
)
from .conftest import OpenEnvironment

HMSS = ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE
Hmss = hmss_pb2.HonestMajorityShareShuffle
GID = "hmss-1"
Q = 127
MF = 3
ROLES = {
    "worker1": common_pb2.FIRST_NON_AGGREGATOR,
    "worker2": common_pb2.SECOND_NON_AGGREGATOR,
    "aggregator": common_pb2.AGGREGATOR,
}
# reqA is fulfilled at worker1 (its seed encrypted to worker2), reqB at worker2.
FULFILLED_AT = {"reqA": "worker1", "reqB": "worker2"}
EDPS = {"reqA": "edp1", "reqB": "edp2"}
VECTORS = {
    "reqA": np.array([0, 1, 2, 0, 1, 0, 3, 0], dtype=np.uint8),
    "reqB": np.array([1, 0, 2, 0, 0, 0, 1, 2], dtype=np.uint8),
}


def certificate_name(edp: str) -> str:
    return f"dataProviders/{edp}/certificates/cs"


@dataclass
class HmssWorld:
    """Three duchies' mill environments; the test carries payloads between them."""

    pki: PkiLayout
    consumer_key: HybridPrivateKey
    envs: dict[str, MillStageEnvironment]
    keys: dict[str, HybridPrivateKey] = field(default_factory=dict)
    key_stores: dict[str, PrivateKeyStore] = field(default_factory=dict)

    def handlers(self, duchy: str, *, edp_signers: dict[str, str] | None = None) -> HmssHandlers:
        certificates = {
            certificate_name(edp): signing.load_certificate(
                self.pki.party(Principal.data_provider(edp)).cs_cert.read_bytes()
            )
            for edp in ("edp1", "edp2")
        }
        trust_store = consent.trust_store_with_owners(
            self.pki.all_root_certs.read_bytes(), self.pki.load_trust_config()
        )
        env = self.envs[duchy]
        return HmssHandlers(
            self.key_stores.get(duchy),
            DictCertificates(certificates),
            SignatureChecker(trust_store, env.clock),
        )

    async def run(self, duchy: str, *, seed: str = "run") -> None:
        env = self.envs[duchy]
        runner = env.runner(
            self.handlers(duchy).table(), randomness=SeededRandomSource(f"{duchy}/{seed}")
        )
        await runner.process(await env.claim(HMSS))

    async def token(self, duchy: str) -> Token:
        return await self.envs[duchy].get(GID)


async def hmss_world(
    open_environment: OpenEnvironment,
    pki: PkiLayout,
    consumer_key: HybridPrivateKey,
    *,
    sign_with: dict[str, str] | None = None,
) -> HmssWorld:
    """Every duchy's computation at INITIALIZED, with the EDPs' uploads recorded."""
    envs = {duchy: await open_environment(duchy) for duchy in ROLES}
    world = HmssWorld(pki, consumer_key, envs)
    kek = aead_from_cleartext_keyset(generate_kek_keyset())
    pairs: dict[str, Hmss.EncryptionKeyPair] = {}
    for worker in ("worker1", "worker2"):
        key = HybridPrivateKey.generate(HPKE_X25519)
        store = PrivateKeyStore(envs[worker].store, kek)
        world.keys[worker], world.key_stores[worker] = key, store
        pairs[worker] = Hmss.EncryptionKeyPair(
            private_key_id=await store.store(key),
            public_key=consent.encryption_public_key(key.public_key().keyset()),
        )
    for duchy, role in ROLES.items():
        details = hmss_details(
            consumer_key,
            role,
            random_seed=bytes([len(duchy)]) * 48 if duchy != "aggregator" else b"",
            key_pair=pairs.get(duchy),
            maximum_frequency=MF,
            ring_modulus=Q,
        )
        token = await envs[duchy].create(GID, HMSS, details, requisitions(sorted(VECTORS)))
        for rid, worker in FULFILLED_AT.items():
            if worker != duchy:
                continue
            other = "worker2" if worker == "worker1" else "worker1"
            seed = bytes([ord(rid[-1])]) * 48
            signer_edp = (sign_with or {}).get(rid, EDPS[rid])
            signed = consent.sign_message(
                crypto_pb2.RandomSeed(data=seed),
                signing.load_private_key(
                    pki.party(Principal.data_provider(signer_edp)).cs_key.read_bytes()
                ),
            )
            sealed = consent.encrypt_signed(signed, world.keys[other].public_key().keyset())
            share = split(VECTORS[rid], Q, seed)
            path = await envs[duchy].store_requisition(GID, rid, encode_frequency_vector(share))
            token = await envs[duchy].record_fulfillment(
                token,
                requisition_key(rid),
                path,
                hmss_fulfillment(sealed.ciphertext, VECTORS[rid].size, certificate_name(EDPS[rid])),
            )
    return world


async def test_workers_publish_signed_keys_and_the_aggregator_waits_for_two_inputs(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    world = await hmss_world(open_environment, dev_pki, consumer_key)
    for duchy in ROLES:
        await world.run(duchy)

    for worker in ("worker1", "worker2"):
        params = world.envs[worker].participant(GID).requisition_params
        published = params.honest_majority_share_shuffle
        signing.verify(
            signing.load_certificate(dev_pki.party(Principal.duchy(worker)).cs_cert.read_bytes()),
            published.tink_public_key,
            published.tink_public_key_signature,
            published.tink_public_key_signature_algorithm_oid,
        )
        key = crypto_pb2.EncryptionPublicKey.FromString(published.tink_public_key)
        assert key.data == world.keys[worker].public_key().keyset()
    aggregator_params = world.envs["aggregator"].participant(GID).requisition_params
    assert aggregator_params.HasField("honest_majority_share_shuffle")
    assert not aggregator_params.honest_majority_share_shuffle.tink_public_key

    assert stage_of(await world.token("worker1")) == Stage.WAIT_TO_START
    assert stage_of(await world.token("worker2")) == Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE
    aggregator = await world.token("aggregator")
    assert stage_of(aggregator) == Stage.WAIT_ON_AGGREGATION_INPUT
    assert len(output_slots(aggregator)) == 2
    slots = aggregator.stage_specific_details.honest_majority_share_shuffle
    assert dict(slots.wait_on_aggregation_input.external_duchy_local_blob_id) == {
        "worker1": 0,
        "worker2": 1,
    }


async def initialized_everywhere(world: HmssWorld) -> None:
    for duchy in ROLES:
        await world.run(duchy)
    token = await world.token("worker1")
    await world.envs["worker1"].move_to(token, Stage.SETUP_PHASE)


async def test_a_whole_computation_carried_between_three_mills_matches_the_plaintext(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    world = await hmss_world(open_environment, dev_pki, consumer_key)
    await initialized_everywhere(world)
    w1, w2, agg = world.envs["worker1"], world.envs["worker2"], world.envs["aggregator"]

    w1.peers.stages["worker2"] = Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE
    await world.run("worker1")
    [to_w2] = w1.peers.delivered
    assert to_w2.peer == "worker2"
    assert to_w2.header.name == f"computations/{GID}"
    assert to_w2.header.honest_majority_share_shuffle.description == 1
    shuffle_input = decode_shuffle_phase_input(to_w2.payload)
    assert shuffle_input.peer_random_seed == bytes([7]) * 48
    assert [s.requisition_id for s in shuffle_input.secret_seeds] == ["reqA"]
    assert stage_of(await world.token("worker1")) == Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO

    await w2.move_to(await world.token("worker2"), Stage.SETUP_PHASE, outputs=[to_w2.payload])
    w2.peers.stages["worker1"] = Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO
    await world.run("worker2")
    [to_w1] = w2.peers.delivered
    assert to_w1.header.honest_majority_share_shuffle.description == 2
    worker2 = await world.token("worker2")
    assert stage_of(worker2) == Stage.SHUFFLE_PHASE
    await w1.move_to(await world.token("worker1"), Stage.SHUFFLE_PHASE, outputs=[to_w1.payload])

    shares = []
    for worker, env in (("worker1", w1), ("worker2", w2)):
        env.peers.stages["aggregator"] = Stage.WAIT_ON_AGGREGATION_INPUT
        await world.run(worker)
        delivered = env.peers.delivered[-1]
        assert delivered.peer == "aggregator"
        assert delivered.header.honest_majority_share_shuffle.description == 3
        shares.append(delivered.payload)
        token = await world.token(worker)
        assert stage_of(token) == Stage.COMPLETE
        assert token.computation_details.ending_state == details_pb2.ComputationDetails.SUCCEEDED
    assert decode_aggregation_phase_input(shares[0], Q).register_count == 8

    await agg.move_to(await world.token("aggregator"), Stage.AGGREGATION_PHASE, outputs=shares)
    await world.run("aggregator")

    [request] = agg.kingdom.results
    result = open_result(
        request,
        consumer_key,
        dev_pki.party(Principal.duchy("aggregator")).cs_cert.read_bytes(),
    )
    truth = hmss_ground_truth(
        [VECTORS["reqA"], VECTORS["reqB"]],
        HmssConfig(MeasurementType.REACH_AND_FREQUENCY, maximum_frequency=MF, ring_modulus=Q),
    )
    assert result.reach.value == truth.reach == 6
    assert result.reach.methodology.honest_majority_share_shuffle.frequency_vector_size == 8
    assert dict(result.frequency.relative_frequency_distribution) == pytest.approx(
        dict(truth.frequency_distribution)  # type: ignore[union-attr]
    )
    assert stage_of(await world.token("aggregator")) == Stage.COMPLETE


async def test_setup_phase_skips_sending_to_a_peer_that_is_already_past_it(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    world = await hmss_world(open_environment, dev_pki, consumer_key)
    await initialized_everywhere(world)
    w1 = world.envs["worker1"]
    w1.peers.stages["worker2"] = Stage.SETUP_PHASE

    await world.run("worker1")

    assert w1.peers.delivered == []
    assert stage_of(await world.token("worker1")) == Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO


async def test_setup_phase_waits_for_a_peer_that_is_not_there_yet(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    world = await hmss_world(open_environment, dev_pki, consumer_key)
    await initialized_everywhere(world)
    w1 = world.envs["worker1"]
    w1.peers.stages["worker2"] = Stage.INITIALIZED

    await world.run("worker1")

    assert w1.peers.delivered == []
    token = await world.token("worker1")
    assert stage_of(token) == Stage.SETUP_PHASE
    assert token.lock_owner == "" and token.HasField("lock_expiration_time")
    assert "enqueue" in w1.computations.calls
    assert w1.kingdom.failures == []


async def test_a_retried_shuffle_resends_the_stored_output(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    """Noise makes every shuffle different: a retry must send what the first try stored."""
    world = await hmss_world(open_environment, dev_pki, consumer_key)
    await initialized_everywhere(world)
    w1, w2 = world.envs["worker1"], world.envs["worker2"]
    w1.peers.stages["worker2"] = Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE
    await world.run("worker1")
    await w2.move_to(
        await world.token("worker2"), Stage.SETUP_PHASE, outputs=[w1.peers.delivered[0].payload]
    )
    w2.peers.stages["worker1"] = Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO
    await world.run("worker2")

    w2.peers.stages["aggregator"] = Stage.WAIT_ON_AGGREGATION_INPUT
    w2.peers.faults.add("advance:aggregator", grpc.StatusCode.UNAVAILABLE)
    await world.run("worker2", seed="first")
    assert w2.peers.delivered[-1].peer == "worker1"
    stored_path = ComputationBlobKey(GID, "SHUFFLE_PHASE", 0).path
    stored = await computation_store(w2.store).read_bytes(stored_path)

    w2.clock.advance(LOCK_DURATION)
    await world.run("worker2", seed="second")

    delivered = w2.peers.delivered[-1]
    assert delivered.peer == "aggregator"
    assert delivered.payload == stored
    assert stage_of(await world.token("worker2")) == Stage.COMPLETE


async def test_noised_shuffle_sends_noise_registers(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    world = await hmss_world(open_environment, dev_pki, consumer_key)
    for env in world.envs.values():
        token = await env.get(GID)
        details = details_pb2.ComputationDetails()
        details.CopyFrom(token.computation_details)
        params = details.honest_majority_share_shuffle.parameters
        params.noise_mechanism = 1  # GEOMETRIC
        params.reach_dp_params.epsilon, params.reach_dp_params.delta = 1.0, 1e-9
        params.frequency_dp_params.epsilon, params.frequency_dp_params.delta = 1.0, 1e-9
        await env.computations.update_details(token, details)
    await initialized_everywhere(world)
    w1, w2 = world.envs["worker1"], world.envs["worker2"]
    w1.peers.stages["worker2"] = Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE
    await world.run("worker1")
    await w2.move_to(
        await world.token("worker2"), Stage.SETUP_PHASE, outputs=[w1.peers.delivered[0].payload]
    )
    w2.peers.stages["worker1"] = Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO
    w2.peers.stages["aggregator"] = Stage.WAIT_ON_AGGREGATION_INPUT
    await world.run("worker2")
    await world.run("worker2")

    payload = decode_aggregation_phase_input(w2.peers.delivered[-1].payload, Q)
    assert payload.register_count == 8
    assert payload.share_vector.size > 8


async def test_a_seed_signed_by_another_edp_fails_the_computation(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    # edp2 signs reqA's seed, which names edp1's certificate.
    world = await hmss_world(open_environment, dev_pki, consumer_key, sign_with={"reqA": "edp2"})
    await initialized_everywhere(world)
    w1, w2 = world.envs["worker1"], world.envs["worker2"]
    w1.peers.stages["worker2"] = Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE
    await world.run("worker1")
    await w2.move_to(
        await world.token("worker2"), Stage.SETUP_PHASE, outputs=[w1.peers.delivered[0].payload]
    )
    w2.peers.stages["worker1"] = Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO
    await world.run("worker2")

    await world.run("worker2")

    [(_, failure)] = w2.kingdom.failures
    assert "edp1" in failure.error_message
    assert all(d.peer != "aggregator" for d in w2.peers.delivered)
    token = await world.token("worker2")
    assert token.computation_details.ending_state == details_pb2.ComputationDetails.FAILED


async def test_aggregation_rejects_inputs_of_different_register_counts(
    open_environment: OpenEnvironment, dev_pki: PkiLayout, consumer_key: HybridPrivateKey
) -> None:
    world = await hmss_world(open_environment, dev_pki, consumer_key)
    await world.run("aggregator")
    agg = world.envs["aggregator"]
    shares = [
        bytes(encode_aggregation_phase_input(np.zeros(8, dtype=np.uint32), 8)),
        bytes(encode_aggregation_phase_input(np.zeros(9, dtype=np.uint32), 9)),
    ]
    await agg.move_to(await world.token("aggregator"), Stage.AGGREGATION_PHASE, outputs=shares)

    await world.run("aggregator")

    assert agg.kingdom.results == []
    [(_, failure)] = agg.kingdom.failures
    assert "register counts" in failure.error_message
