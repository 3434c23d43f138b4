"""The CreateMeasurement request: signed spec, one encrypted spec and nonce per EDP."""

from __future__ import annotations

from datetime import UTC, datetime

from cmms.api.public.v1 import measurement_spec_pb2, requisition_spec_pb2
from cmms.clients.mc.measurement import MeasurementKind, MeasurementParams
from cmms.common import consent
from cmms.crypto.randomness import SeededRandomSource
from cmms.testing.requisitions import ConsentWorld


async def test_request_carries_a_signed_spec_and_per_edp_encrypted_specs(
    world: ConsentWorld,
) -> None:
    params = MeasurementParams(
        kind=MeasurementKind.REACH, vid_sampling_start=0.2, vid_sampling_width=0.5
    )
    prepared = world.prepare(params, ["edp1", "edp2"], SeededRandomSource("mc"))
    request = prepared.request
    assert request.parent == "measurementConsumers/mc1"
    mc_certificate = await world.certificates.get(
        request.measurement.measurement_consumer_certificate
    )
    consent.verify_signed(
        request.measurement.measurement_spec,
        mc_certificate,
        trust_store=world.measurement_consumer.trust_store,
        now=datetime.now(UTC),
        expected_owner="measurementConsumers/mc1",
    )
    spec = consent.unpack(
        request.measurement.measurement_spec, measurement_spec_pb2.MeasurementSpec
    )
    assert spec.WhichOneof("measurement_type") == "reach"
    assert spec.vid_sampling_interval.width == 0.5
    assert spec.measurement_public_key.data == world.measurement_consumer.public_keyset
    assert len(set(prepared.nonces.values())) == 2 and 0 not in prepared.nonces.values()
    assert sorted(spec.nonce_hashes) == sorted(
        consent.nonce_hash(n) for n in prepared.nonces.values()
    )
    for entry in request.measurement.data_providers:
        edp = world.data_providers[entry.key.split("/")[1]]
        signed = consent.decrypt_signed(entry.value.encrypted_requisition_spec, edp.encryption_key)
        requisition_spec = consent.unpack(signed, requisition_spec_pb2.RequisitionSpec)
        assert requisition_spec.nonce == prepared.nonces[entry.key]
        assert entry.value.nonce_hash == consent.nonce_hash(requisition_spec.nonce)
        assert [g.key for g in requisition_spec.event_groups] == [f"{entry.key}/eventGroups/sim"]
        assert entry.value.encrypted_requisition_spec.type_url == consent.SIGNED_MESSAGE_TYPE_URL


def test_nonces_are_fresh_per_request(world: ConsentWorld) -> None:
    random = SeededRandomSource("fresh")
    first = world.prepare(MeasurementParams(), ["edp1"], random)
    second = world.prepare(MeasurementParams(), ["edp1"], random)
    assert first.nonces != second.nonces
