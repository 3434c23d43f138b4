"""Starters: the CreateComputation request each protocol builds from a Kingdom computation."""

from __future__ import annotations

import hashlib

import pytest

from cmms.api.internal.duchy.protocol.v1 import common_pb2, hmss_pb2, trustee_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.crypto.hybrid import HybridPublicKey
from cmms.crypto.keystore import aead_from_cleartext_keyset, generate_kek_keyset
from cmms.crypto.randomness import SeededRandomSource
from cmms.duchy.herald.config import ProtocolsSetupConfig
from cmms.duchy.herald.starters.common import DuchyContext, StarterError, requisition_fingerprint
from cmms.duchy.herald.starters.hmss import HmssStarter
from cmms.duchy.herald.starters.liquid_legions import (
    LiquidLegionsV2Starter,
    ReachOnlyLiquidLegionsV2Starter,
)
from cmms.duchy.herald.starters.trustee import TrusTeeStarter
from cmms.duchy.private_keys import PrivateKeyStore
from cmms.storage import open_blob_store
from cmms.testing.herald import AGGREGATOR, WORKER1, WORKER2, ComputationBuilder, setup_config

Hmss = hmss_pb2.HonestMajorityShareShuffle


def duchy(duchy_id: str, setup: ProtocolsSetupConfig | None = None) -> DuchyContext:
    return DuchyContext(duchy_id, setup or setup_config())


async def test_llv2_details_requisitions_and_kingdom_facts() -> None:
    builder = ComputationBuilder()
    computation = builder.build("liquid_legions_v2")
    request = await LiquidLegionsV2Starter(duchy(WORKER1)).creation_request(computation)

    assert request.computation_type == 1
    assert request.global_computation_id == builder.computation_id
    assert not request.HasField("computation_stage")  # the protocol's initial stage
    details = request.computation_details
    assert (
        details.blobs_storage_prefix == f"computation-blob-storage/worker1/{builder.computation_id}"
    )
    assert details.kingdom_computation.measurement_spec == computation.measurement_spec
    assert details.kingdom_computation.measurement_public_key.data == b"mc key"
    assert details.kingdom_computation.participant_count == 3
    assert details.kingdom_computation.public_api_version == "v1"
    ll = details.liquid_legions_v2
    assert ll.role == common_pb2.NON_AGGREGATOR
    assert ll.parameters.maximum_frequency == 10
    assert ll.parameters.sketch_parameters.decay_rate == 12.0
    assert ll.parameters.sketch_parameters.size == 100_000
    assert ll.parameters.elliptic_curve_id == 415
    assert ll.parameters.requisition_count == 2
    noise = ll.parameters.noise
    assert noise.noise_mechanism == computation_pb2.DISCRETE_GAUSSIAN
    assert noise.blinded_histogram_noise.epsilon == 0.5
    assert noise.publisher_noise.delta == 1e-11
    assert noise.reach_noise.epsilon == 1.0 and noise.frequency_noise.delta == 1e-9

    first = request.requisitions[0]
    assert first.key.external_requisition_id == "req1"
    expected = hashlib.sha256(
        computation.measurement_spec + computation.requisitions[0].requisition_spec_hash
    ).digest()
    assert first.key.requisition_fingerprint == expected
    assert first.value.nonce_hash == computation.requisitions[0].nonce_hash
    assert first.value.external_fulfilling_duchy_id == ""  # not known before fulfilment


async def test_llv2_aggregator_role() -> None:
    computation = ComputationBuilder().build("liquid_legions_v2")
    request = await LiquidLegionsV2Starter(duchy(AGGREGATOR)).creation_request(computation)
    assert request.computation_details.liquid_legions_v2.role == common_pb2.AGGREGATOR


async def test_llv2_reach_measurement_has_maximum_frequency_one_and_no_frequency_noise() -> None:
    computation = ComputationBuilder(reach_only=True).build("liquid_legions_v2")
    request = await LiquidLegionsV2Starter(duchy(WORKER2)).creation_request(computation)
    parameters = request.computation_details.liquid_legions_v2.parameters
    assert parameters.maximum_frequency == 1
    assert not parameters.noise.HasField("frequency_noise")


async def test_reach_only_llv2_accepts_reach_only() -> None:
    starter = ReachOnlyLiquidLegionsV2Starter(duchy(WORKER1))
    reach = ComputationBuilder(reach_only=True).build("reach_only_liquid_legions_v2")
    request = await starter.creation_request(reach)
    assert request.computation_type == 2
    details = request.computation_details.reach_only_liquid_legions_v2
    assert details.role == common_pb2.NON_AGGREGATOR
    assert details.parameters.noise.reach_noise.epsilon == 1.0
    with pytest.raises(StarterError, match="reach_and_frequency is not supported"):
        await starter.creation_request(ComputationBuilder().build("reach_only_liquid_legions_v2"))


@pytest.mark.parametrize(
    ("builder", "reason"),
    [
        (ComputationBuilder(delta=0.0), "delta"),
        (ComputationBuilder(epsilon=1e-6), "epsilon"),
        (ComputationBuilder(noise_mechanism=computation_pb2.NONE), "NONE"),
        (
            ComputationBuilder(noise_mechanism=computation_pb2.DETERMINISTIC_TRUNCATED_LAPLACE),
            "DETERMINISTIC_TRUNCATED_LAPLACE",
        ),
        (ComputationBuilder(maximum_frequency=1), "maximum frequency"),
        (ComputationBuilder(public_api_version="v2alpha"), "public API version"),
    ],
)
async def test_llv2_parameter_checks(builder: ComputationBuilder, reason: str) -> None:
    with pytest.raises(StarterError, match=reason):
        await LiquidLegionsV2Starter(duchy(WORKER1)).creation_request(
            builder.build("liquid_legions_v2")
        )


async def test_llv2_needs_the_protocol_set_up() -> None:
    starter = LiquidLegionsV2Starter(duchy(WORKER1, ProtocolsSetupConfig()))
    with pytest.raises(StarterError, match="not set up"):
        await starter.creation_request(ComputationBuilder().build("liquid_legions_v2"))


@pytest.fixture
def key_store() -> PrivateKeyStore:
    kek = aead_from_cleartext_keyset(generate_kek_keyset())
    return PrivateKeyStore(open_blob_store("memory://"), kek)


async def test_hmss_worker_gets_seed_and_a_sealed_per_computation_key(
    key_store: PrivateKeyStore,
) -> None:
    builder = ComputationBuilder()
    computation = builder.build("honest_majority_share_shuffle")
    starter = HmssStarter(duchy(WORKER1), key_store.store, randomness=SeededRandomSource("t"))
    request = await starter.creation_request(computation)

    assert request.computation_type == 3
    assert request.computation_stage.honest_majority_share_shuffle == Hmss.INITIALIZED
    details = request.computation_details.honest_majority_share_shuffle
    assert details.role == common_pb2.FIRST_NON_AGGREGATOR
    assert list(details.non_aggregators) == [WORKER1, WORKER2]
    assert details.aggregator == AGGREGATOR
    assert details.parameters.measurement_type == common_pb2.REACH_AND_FREQUENCY
    assert details.parameters.maximum_frequency == 10
    assert details.parameters.ring_modulus == 127
    assert details.parameters.reach_dp_params.epsilon == 1.0
    assert details.parameters.frequency_dp_params.delta == 1e-9
    assert details.parameters.vid_sampling_interval_width == 0.5
    assert len(details.random_seed) == 48

    pair = details.encryption_key_pair
    private_key = await key_store.load(pair.private_key_id)
    assert private_key.public_key() == HybridPublicKey.from_keyset(pair.public_key.data)
    # What is encrypted to the recorded public key opens with the stored private key.
    assert (
        private_key.decrypt(HybridPublicKey.from_keyset(pair.public_key.data).encrypt(b"s")) == b"s"
    )
    # Pre-assigned fulfilling duchies are copied.
    assert [r.value.external_fulfilling_duchy_id for r in request.requisitions] == [
        WORKER1,
        WORKER2,
    ]


async def test_hmss_seeds_and_keys_are_fresh_per_computation(key_store: PrivateKeyStore) -> None:
    starter = HmssStarter(duchy(WORKER2), key_store.store)
    one = await starter.creation_request(
        ComputationBuilder().build("honest_majority_share_shuffle")
    )
    two = await starter.creation_request(
        ComputationBuilder(computation_id="AAAAAAAAAAI").build("honest_majority_share_shuffle")
    )
    a = one.computation_details.honest_majority_share_shuffle
    b = two.computation_details.honest_majority_share_shuffle
    assert a.role == common_pb2.SECOND_NON_AGGREGATOR
    assert a.random_seed != b.random_seed
    assert a.encryption_key_pair.private_key_id != b.encryption_key_pair.private_key_id


async def test_hmss_aggregator_has_no_seed_or_key() -> None:
    computation = ComputationBuilder(reach_only=True).build("honest_majority_share_shuffle")
    request = await HmssStarter(duchy(AGGREGATOR), None).creation_request(computation)
    details = request.computation_details.honest_majority_share_shuffle
    assert details.role == common_pb2.AGGREGATOR
    assert details.random_seed == b""
    assert not details.HasField("encryption_key_pair")
    assert details.parameters.maximum_frequency == 1
    assert details.parameters.ring_modulus == 31
    assert details.parameters.reach_dp_params.delta == 1e-9
    assert not details.parameters.HasField("frequency_dp_params")


async def test_hmss_without_noise_stores_no_dp_params() -> None:
    builder = ComputationBuilder(noise_mechanism=computation_pb2.NONE, delta=0.0)
    request = await HmssStarter(duchy(AGGREGATOR), None).creation_request(
        builder.build("honest_majority_share_shuffle")
    )
    parameters = request.computation_details.honest_majority_share_shuffle.parameters
    assert parameters.noise_mechanism == computation_pb2.NONE
    assert not parameters.HasField("reach_dp_params")


@pytest.mark.parametrize(
    ("builder", "duchy_id", "reason"),
    [
        (ComputationBuilder(delta=0.0), AGGREGATOR, "delta"),
        (ComputationBuilder(epsilon=1e-7), AGGREGATOR, "epsilon"),
        (
            ComputationBuilder(noise_mechanism=computation_pb2.CONTINUOUS_GAUSSIAN),
            AGGREGATOR,
            "CONTINUOUS_GAUSSIAN",
        ),
        (ComputationBuilder(), "worker3", "no role"),
        (ComputationBuilder(), WORKER1, "key-encryption key"),
    ],
)
async def test_hmss_checks(builder: ComputationBuilder, duchy_id: str, reason: str) -> None:
    with pytest.raises(StarterError, match=reason):
        await HmssStarter(duchy(duchy_id), None).creation_request(
            builder.build("honest_majority_share_shuffle")
        )


async def test_trustee_details() -> None:
    computation = ComputationBuilder(noise_mechanism=computation_pb2.NONE, delta=0.0).build(
        "trus_tee"
    )
    request = await TrusTeeStarter(duchy(AGGREGATOR)).creation_request(computation)
    assert request.computation_type == 4
    assert request.computation_stage.trus_tee == trustee_pb2.TrusTee.INITIALIZED
    details = request.computation_details.trus_tee
    assert details.role == common_pb2.AGGREGATOR
    assert details.measurement_type == common_pb2.REACH_AND_FREQUENCY
    # Unchecked and still recorded under NONE.
    assert details.parameters.reach_dp_params.delta == 0.0
    assert details.parameters.HasField("frequency_dp_params")
    assert details.parameters.result_minimum_thresholds.min_users == 5
    assert details.parameters.maximum_frequency == 10


async def test_trustee_checks_noised_reach_and_frequency_and_its_duchy() -> None:
    with pytest.raises(StarterError, match="delta"):
        await TrusTeeStarter(duchy(AGGREGATOR)).creation_request(
            ComputationBuilder(delta=0.0).build("trus_tee")
        )
    with pytest.raises(StarterError, match="not set up to run TrusTee"):
        await TrusTeeStarter(duchy(WORKER1)).creation_request(
            ComputationBuilder().build("trus_tee")
        )


def test_fingerprint_is_sha256_of_spec_bytes_then_spec_hash() -> None:
    assert requisition_fingerprint(b"ab", b"cd") == hashlib.sha256(b"abcd").digest()
