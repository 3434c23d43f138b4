"""EDP-side consent checks: valid requisitions pass, anything tampered is refused as it should be."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cmms.api.public.v1 import (
    crypto_pb2,
    measurement_spec_pb2,
    protocol_config_pb2,
    requisitions_pb2,
)
from cmms.clients.edp.verification import (
    CONSENT_SIGNAL_INVALID,
    SPEC_INVALID,
    UNFULFILLABLE,
    Protocol,
    RequisitionRefused,
    VerifiedRequisition,
    verify_requisition,
)
from cmms.clients.mc.measurement import MeasurementKind, MeasurementParams
from cmms.common import consent
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.crypto import elgamal, signing
from cmms.crypto.randomness import SeededRandomSource
from cmms.testing.requisitions import (
    ConsentWorld,
    direct_config,
    hmss_config,
    llv2_config,
    trustee_config,
)

NOW = datetime.now(UTC)
EDPS = ("edp1", "edp2")
WORKERS = ["worker1", "worker2"]
ALL_DUCHIES = ["aggregator", "worker1", "worker2"]


def _requisition(
    world: ConsentWorld, config: protocol_config_pb2.ProtocolConfig, duchies: list[str]
) -> requisitions_pb2.Requisition:
    random = SeededRandomSource("verification")
    prepared = world.prepare(MeasurementParams(), EDPS, random)
    requisitions, _ = world.requisitions(prepared, config, duchies, random)
    return requisitions["edp1"]


async def _verify(
    world: ConsentWorld, requisition: requisitions_pb2.Requisition
) -> VerifiedRequisition:
    return await verify_requisition(
        requisition, world.data_providers["edp1"], world.certificates, now=NOW
    )


async def _refusal(
    world: ConsentWorld, requisition: requisitions_pb2.Requisition
) -> RequisitionRefused:
    with pytest.raises(RequisitionRefused) as caught:
        await _verify(world, requisition)
    assert caught.value.message
    return caught.value


async def test_llv2_requisition_passes_with_the_sum_of_the_duchy_keys(world: ConsentWorld) -> None:
    random = SeededRandomSource("llv2")
    prepared = world.prepare(MeasurementParams(), EDPS, random)
    requisitions, keys = world.requisitions(prepared, llv2_config(), ALL_DUCHIES, random)
    verified = await _verify(world, requisitions["edp1"])
    assert verified.protocol is Protocol.LIQUID_LEGIONS_V2
    assert verified.nonce == prepared.nonces["dataProviders/edp1"]
    assert verified.combined_el_gamal_key == elgamal.public_element(keys.combined_secret)
    assert verified.duchies == tuple(ALL_DUCHIES)
    assert verified.fingerprint == consent.requisition_fingerprint(
        requisitions["edp1"].measurement_spec.message.value,
        requisitions["edp1"].encrypted_requisition_spec.ciphertext,
    )


async def test_hmss_requisition_routes_data_to_the_keyless_worker(world: ConsentWorld) -> None:
    requisition = _requisition(world, hmss_config(), WORKERS)
    verified = await _verify(world, requisition)
    assert verified.hmss is not None
    keyed = [
        e.key
        for e in requisition.duchies
        if e.value.honest_majority_share_shuffle.HasField("public_key")
    ]
    assert [f"duchies/{verified.hmss.peer_duchy}"] == keyed
    assert {verified.hmss.fulfilling_duchy, verified.hmss.peer_duchy} == set(WORKERS)


@pytest.mark.parametrize("config", [trustee_config(), direct_config()])
async def test_trustee_and_direct_requisitions_pass(
    world: ConsentWorld, config: protocol_config_pb2.ProtocolConfig
) -> None:
    duchies = ["aggregator"] if config.WhichOneof("protocol") == "trus_tee" else []
    verified = await _verify(world, _requisition(world, config, duchies))
    assert verified.max_frequency == 10


async def test_tampered_measurement_spec_is_refused_as_invalid_consent(world: ConsentWorld) -> None:
    requisition = _requisition(world, hmss_config(), WORKERS)
    requisition.measurement_spec.message.value = (
        requisition.measurement_spec.message.value + b"\x00"
    )
    assert (await _refusal(world, requisition)).justification == CONSENT_SIGNAL_INVALID


async def test_tampered_signature_is_refused(world: ConsentWorld) -> None:
    requisition = _requisition(world, hmss_config(), WORKERS)
    signature = bytearray(requisition.measurement_spec.signature)
    signature[-1] ^= 1
    requisition.measurement_spec.signature = bytes(signature)
    assert (await _refusal(world, requisition)).justification == CONSENT_SIGNAL_INVALID


async def test_tampered_requisition_spec_ciphertext_is_refused(world: ConsentWorld) -> None:
    requisition = _requisition(world, hmss_config(), WORKERS)
    ciphertext = bytearray(requisition.encrypted_requisition_spec.ciphertext)
    ciphertext[40] ^= 1
    requisition.encrypted_requisition_spec.ciphertext = bytes(ciphertext)
    assert (await _refusal(world, requisition)).justification == CONSENT_SIGNAL_INVALID


async def test_requisition_spec_signed_by_someone_else_is_refused(world: ConsentWorld) -> None:
    requisition = _requisition(world, hmss_config(), WORKERS)
    edp = world.data_providers["edp1"]
    signed = consent.decrypt_signed(requisition.encrypted_requisition_spec, edp.encryption_key)
    forged = crypto_pb2.SignedMessage()
    forged.CopyFrom(signed)
    forged.signature = signing.sign(world.data_providers["edp2"].signing_key, signed.message.value)
    requisition.encrypted_requisition_spec.CopyFrom(
        consent.encrypt_signed(forged, edp.public_keyset)
    )
    assert (await _refusal(world, requisition)).justification == CONSENT_SIGNAL_INVALID


async def test_nonce_missing_from_the_spec_is_refused(world: ConsentWorld) -> None:
    random = SeededRandomSource("nonce")
    prepared = world.prepare(MeasurementParams(), EDPS, random)
    # The consumer re-signs a spec that lacks edp1's nonce hash: a valid signature, a broken link.
    spec = consent.unpack(
        prepared.request.measurement.measurement_spec, measurement_spec_pb2.MeasurementSpec
    )
    del spec.nonce_hashes[:]
    prepared.request.measurement.measurement_spec.CopyFrom(
        consent.sign_message(spec, world.measurement_consumer.signing_key)
    )
    requisitions, _ = world.requisitions(prepared, hmss_config(), WORKERS, random)
    refusal = await _refusal(world, requisitions["edp1"])
    assert refusal.justification == CONSENT_SIGNAL_INVALID
    assert "nonce" in refusal.message


async def test_requisition_for_another_edp_key_is_refused(world: ConsentWorld) -> None:
    requisition = _requisition(world, hmss_config(), WORKERS)
    requisition.data_provider_public_key.data = world.data_providers["edp2"].public_keyset
    assert (await _refusal(world, requisition)).justification == CONSENT_SIGNAL_INVALID


async def test_duchy_key_signed_by_an_untrusted_root_is_refused(
    world: ConsentWorld, untrusted_pki: PkiLayout
) -> None:
    requisition = _requisition(world, llv2_config(), ALL_DUCHIES)
    impostor = signing.load_private_key(
        untrusted_pki.party(Principal.duchy("worker1")).cs_key.read_bytes()
    )
    entry = next(e for e in requisition.duchies if e.key == "duchies/worker1")
    signed = entry.value.liquid_legions_v2.el_gamal_public_key
    signed.signature = signing.sign(impostor, signed.message.value)
    assert (await _refusal(world, requisition)).justification == CONSENT_SIGNAL_INVALID


async def test_duchy_key_signed_by_another_duchy_is_refused(world: ConsentWorld) -> None:
    requisition = _requisition(world, llv2_config(), ALL_DUCHIES)
    entry = next(e for e in requisition.duchies if e.key == "duchies/worker1")
    signed = entry.value.liquid_legions_v2.el_gamal_public_key
    signed.signature = signing.sign(world.duchy_signing_keys["worker2"], signed.message.value)
    assert (await _refusal(world, requisition)).justification == CONSENT_SIGNAL_INVALID


async def test_hmss_with_two_keyed_workers_is_a_spec_error(world: ConsentWorld) -> None:
    requisition = _requisition(world, hmss_config(), WORKERS)
    keyed = next(
        e
        for e in requisition.duchies
        if e.value.honest_majority_share_shuffle.HasField("public_key")
    )
    for entry in requisition.duchies:
        entry.value.honest_majority_share_shuffle.public_key.CopyFrom(
            keyed.value.honest_majority_share_shuffle.public_key
        )
    assert (await _refusal(world, requisition)).justification == SPEC_INVALID


async def test_hmss_with_three_duchies_is_a_spec_error(world: ConsentWorld) -> None:
    requisition = _requisition(world, hmss_config(), ALL_DUCHIES)
    assert (await _refusal(world, requisition)).justification == SPEC_INVALID


async def test_impression_measurements_are_unfulfillable(world: ConsentWorld) -> None:
    random = SeededRandomSource("impression")
    prepared = world.prepare(MeasurementParams(kind=MeasurementKind.REACH), EDPS, random)
    spec = consent.unpack(
        prepared.request.measurement.measurement_spec, measurement_spec_pb2.MeasurementSpec
    )
    spec.impression.maximum_frequency_per_user = 3
    prepared.request.measurement.measurement_spec.CopyFrom(
        consent.sign_message(spec, world.measurement_consumer.signing_key)
    )
    requisitions, _ = world.requisitions(prepared, hmss_config(reach_only=True), WORKERS, random)
    assert (await _refusal(world, requisitions["edp1"])).justification == UNFULFILLABLE
