"""Payloads checked against the plaintext truth they were built from."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from cmms.api.public.v1 import common_pb2, crypto_pb2, frequency_vector_pb2
from cmms.clients.edp.direct import direct_fulfillment_request, direct_result
from cmms.clients.edp.payloads import (
    KmsKey,
    frequency_vector,
    hmss_upload,
    liquid_legions_body,
    sampled_for_liquid_legions,
    trustee_upload,
)
from cmms.clients.edp.population import Audience, Population, impression_vids, reach_and_frequency
from cmms.clients.edp.verification import (
    RequisitionRefused,
    VerifiedRequisition,
    verify_requisition,
)
from cmms.clients.mc.measurement import MeasurementKind, MeasurementParams
from cmms.common import consent
from cmms.common.kms import LocalFileKmsClient, create_local_kek_file
from cmms.crypto import elgamal, group, sharing
from cmms.crypto.envelope import open_envelope
from cmms.crypto.randomness import SeededRandomSource
from cmms.sketch import (
    LiquidLegionsParams,
    LiquidLegionsSketch,
    ReachOnlyLiquidLegionsSketch,
    VidIndexMap,
)
from cmms.sketch.encryption import DESTROYED_KEY_SEED, UNIT_POINT_SEED
from cmms.testing.requisitions import (
    ConsentWorld,
    DuchyKeys,
    direct_config,
    hmss_config,
    llv2_config,
    trustee_config,
)

NOW = datetime.now(UTC)
POPULATION = Population(seed=42, size=2_000)
EVENTS = impression_vids(POPULATION, Audience("edp1", 0.3))


async def _verified(
    world: ConsentWorld,
    config: object,
    duchies: list[str],
    params: MeasurementParams = MeasurementParams(),
) -> tuple[VerifiedRequisition, DuchyKeys]:
    random = SeededRandomSource("payloads")
    prepared = world.prepare(params, ["edp1", "edp2"], random)
    requisitions, keys = world.requisitions(prepared, config, duchies, random)  # type: ignore[arg-type]
    verified = await verify_requisition(
        requisitions["edp1"], world.data_providers["edp1"], world.certificates, now=NOW
    )
    return verified, keys


def _decrypt_field(body: bytes, register_size: int, field: int, secret: int) -> list[bytes | None]:
    with elgamal.decode_ciphertexts(body, offset=field * 66, stride=register_size) as cts:
        return elgamal.decrypt_to_bytes(cts, secret)


async def test_llv2_sketch_decrypts_to_the_expected_index_key_and_count_points(
    world: ConsentWorld,
) -> None:
    config = llv2_config(max_size=5_000)
    params = MeasurementParams(max_frequency=3, vid_sampling_start=0.1, vid_sampling_width=0.6)
    verified, keys = await _verified(world, config, ["aggregator", "worker1", "worker2"], params)
    body = liquid_legions_body(verified, EVENTS, SeededRandomSource("sketch"))
    sketch_params = config.liquid_legions_v2.sketch_params
    expected = LiquidLegionsSketch.from_vids(
        sampled_for_liquid_legions(verified, EVENTS),
        LiquidLegionsParams(
            sketch_params.decay_rate, sketch_params.max_size, sketch_params.sampling_indicator_size
        ),
    )
    assert len(expected) > 0 and len(body) == 198 * len(expected)
    secret = keys.combined_secret
    indexes, key_points, counts = (_decrypt_field(body, 198, f, secret) for f in range(3))
    destroyed = group.hash_to_curve(DESTROYED_KEY_SEED)
    unit = group.hash_to_curve(UNIT_POINT_SEED)
    for i, (index, key, count) in enumerate(
        zip(expected.indexes, expected.keys, expected.counts, strict=True)
    ):
        assert indexes[i] == group.hash_to_curve(str(int(index)).encode())
        if key == 0:
            assert key_points[i] == counts[i] == destroyed
        else:
            assert key_points[i] == group.hash_to_curve(str(int(key)).encode())
            assert counts[i] == group.point_multiply(unit, min(int(count), 4))


async def test_reach_only_sketch_decrypts_to_the_register_indexes(world: ConsentWorld) -> None:
    config = llv2_config(max_size=5_000, reach_only=True)
    params = MeasurementParams(kind=MeasurementKind.REACH)
    verified, keys = await _verified(world, config, ["aggregator", "worker1"], params)
    body = liquid_legions_body(verified, EVENTS, SeededRandomSource("sketch"))
    expected = ReachOnlyLiquidLegionsSketch.from_vids(EVENTS, 5.6, 5_000)
    points = _decrypt_field(body, 66, 0, keys.combined_secret)
    assert points == [group.hash_to_curve(str(int(i)).encode()) for i in expected.indexes]


async def test_hmss_data_share_and_seed_share_recombine_to_the_frequency_vector(
    world: ConsentWorld,
) -> None:
    verified, keys = await _verified(world, hmss_config(), ["worker1", "worker2"])
    assert verified.hmss is not None
    index_map = VidIndexMap(POPULATION.vids)
    vector = frequency_vector(verified, index_map, EVENTS)
    assert int(vector.sum()) == int(np.minimum(np.unique(EVENTS, return_counts=True)[1], 10).sum())
    seed = bytes(range(48))
    upload = hmss_upload(verified, vector, seed, world.data_providers["edp1"].signing_key)

    header = upload.header.honest_majority_share_shuffle
    assert header.register_count == vector.size == len(POPULATION.vids)
    assert header.data_provider_certificate == verified.requisition.data_provider_certificate
    # The peer opens the seed with its HPKE key and checks the EDP's signature.
    signed_seed = consent.decrypt_signed(header.secret_seed, keys.hpke[verified.hmss.peer_duchy])
    edp_certificate = await world.certificates.get(verified.requisition.data_provider_certificate)
    consent.verify_signed(
        signed_seed,
        edp_certificate,
        trust_store=world.measurement_consumer.trust_store,
        now=NOW,
        expected_owner="dataProviders/edp1",
    )
    assert consent.unpack(signed_seed, crypto_pb2.RandomSeed).data == seed

    data_share = frequency_vector_pb2.FrequencyVector.FromString(b"".join(upload.body)).data
    q = 127
    seed_share = sharing.expand_seed_share(seed, vector.size, q)
    np.testing.assert_array_equal(sharing.add_mod(np.array(data_share), seed_share, q), vector)
    assert not np.array_equal(np.array(data_share), vector)


async def test_hmss_reach_caps_every_register_at_one(world: ConsentWorld) -> None:
    params = MeasurementParams(kind=MeasurementKind.REACH)
    verified, _ = await _verified(
        world, hmss_config(reach_only=True), ["worker1", "worker2"], params
    )
    vector = frequency_vector(verified, VidIndexMap(POPULATION.vids), EVENTS)
    assert set(np.unique(vector).tolist()) == {0, 1}
    assert int(vector.sum()) == np.unique(EVENTS).size


async def test_trustee_envelope_decrypts_to_the_vector_bytes(
    world: ConsentWorld, tmp_path: Path
) -> None:
    verified, _ = await _verified(world, trustee_config(), ["aggregator"])
    vector = frequency_vector(verified, VidIndexMap(POPULATION.vids), EVENTS)
    kms = KmsKey(LocalFileKmsClient(), create_local_kek_file(tmp_path / "kek.tink"))
    upload = trustee_upload(verified, vector, kms)
    envelope = upload.header.trus_tee.envelope_encryption
    assert envelope.kms_kek_uri == kms.kek_uri
    assert envelope.encrypted_dek.format == crypto_pb2.EncryptionKey.TINK_ENCRYPTED_KEYSET
    dek = open_envelope(LocalFileKmsClient(), envelope.kms_kek_uri, envelope.encrypted_dek.data)
    plaintext = b"".join(dek.decrypt_chunks(upload.body))
    assert plaintext == vector.astype(np.uint8).tobytes()


async def test_trustee_without_kms_sends_plain_bytes(world: ConsentWorld) -> None:
    verified, _ = await _verified(world, trustee_config(), ["aggregator"])
    vector = frequency_vector(verified, VidIndexMap(POPULATION.vids), EVENTS)
    upload = trustee_upload(verified, vector, None)
    assert upload.header.trus_tee.data_format == upload.header.TrusTee.FREQUENCY_VECTOR
    assert b"".join(upload.body) == vector.astype(np.uint8).tobytes()


async def test_direct_result_is_the_exact_truth_without_noise_and_opens_for_the_consumer(
    world: ConsentWorld,
) -> None:
    verified, _ = await _verified(world, direct_config(), [])
    result = direct_result(verified, EVENTS, SeededRandomSource("direct"))
    truth = reach_and_frequency([EVENTS], max_frequency=10)
    assert result.reach.value == truth.reach
    assert result.reach.noise_mechanism == common_pb2.NONE
    assert dict(result.frequency.relative_frequency_distribution) == pytest.approx(
        truth.relative_frequency
    )
    request = direct_fulfillment_request(verified, result, world.data_providers["edp1"])
    assert request.nonce == verified.nonce
    signed = consent.decrypt_signed(
        request.encrypted_result, world.measurement_consumer.encryption_key
    )
    assert consent.unpack(signed, type(result)) == result


async def test_direct_refuses_when_no_offered_mechanism_is_supported(world: ConsentWorld) -> None:
    config = direct_config()
    config.direct.noise_mechanisms[:] = [common_pb2.GEOMETRIC]
    verified, _ = await _verified(world, config, [])
    with pytest.raises(RequisitionRefused):
        direct_result(verified, EVENTS, SeededRandomSource("direct"))
