"""The consumer accepts only results it can decrypt, signed by the right kind of party."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cmms.api.public.v1 import measurements_pb2
from cmms.clients.mc.results import ResultVerificationError, verify_results
from cmms.common import consent
from cmms.crypto import signing
from cmms.testing.requisitions import ConsentWorld

Measurement = measurements_pb2.Measurement
NOW = datetime.now(UTC)


def _result() -> Measurement.Result:
    result = Measurement.Result()
    result.reach.value = 6000
    result.frequency.relative_frequency_distribution[2] = 1.0
    return result


def _measurement(
    world: ConsentWorld, signer_key: signing.SigningKey, certificate: str, *, direct: bool = False
) -> Measurement:
    measurement = Measurement(
        name="measurementConsumers/mc1/measurements/m1", state=Measurement.SUCCEEDED
    )
    if direct:
        measurement.protocol_config.direct.SetInParent()
    else:
        measurement.protocol_config.honest_majority_share_shuffle.ring_modulus = 127
    measurement.data_providers.add(key="dataProviders/edp1")
    signed = consent.sign_message(_result(), signer_key)
    output = measurement.results.add(certificate=certificate)
    output.encrypted_result.CopyFrom(
        consent.encrypt_signed(signed, world.measurement_consumer.public_keyset)
    )
    return measurement


async def _verify(world: ConsentWorld, measurement: Measurement) -> list[object]:
    return await verify_results(  # type: ignore[return-value]
        measurement, world.measurement_consumer, world.certificates, now=NOW
    )


async def test_aggregator_signed_result_opens(world: ConsentWorld) -> None:
    measurement = _measurement(
        world, world.duchy_signing_keys["aggregator"], "duchies/aggregator/certificates/cs"
    )
    (verified,) = await verify_results(
        measurement, world.measurement_consumer, world.certificates, now=NOW
    )
    assert verified.signer == "duchies/aggregator"
    assert verified.result == _result()


async def test_direct_result_signed_by_its_edp_opens(world: ConsentWorld) -> None:
    edp1 = world.data_providers["edp1"]
    measurement = _measurement(
        world, edp1.signing_key, "dataProviders/edp1/certificates/cs", direct=True
    )
    assert len(await _verify(world, measurement)) == 1


async def test_tampered_result_ciphertext_is_rejected(world: ConsentWorld) -> None:
    measurement = _measurement(
        world, world.duchy_signing_keys["aggregator"], "duchies/aggregator/certificates/cs"
    )
    ciphertext = bytearray(measurement.results[0].encrypted_result.ciphertext)
    ciphertext[-1] ^= 1
    measurement.results[0].encrypted_result.ciphertext = bytes(ciphertext)
    with pytest.raises(ResultVerificationError):
        await _verify(world, measurement)


async def test_result_signed_by_someone_else_than_the_named_certificate_is_rejected(
    world: ConsentWorld,
) -> None:
    measurement = _measurement(
        world, world.duchy_signing_keys["worker1"], "duchies/aggregator/certificates/cs"
    )
    with pytest.raises(ResultVerificationError, match="signature"):
        await _verify(world, measurement)


async def test_mpc_result_signed_by_an_edp_is_rejected(world: ConsentWorld) -> None:
    edp1 = world.data_providers["edp1"]
    measurement = _measurement(world, edp1.signing_key, "dataProviders/edp1/certificates/cs")
    with pytest.raises(ResultVerificationError, match="may not sign"):
        await _verify(world, measurement)


async def test_direct_result_of_an_edp_outside_the_measurement_is_rejected(
    world: ConsentWorld,
) -> None:
    edp2 = world.data_providers["edp2"]
    measurement = _measurement(
        world, edp2.signing_key, "dataProviders/edp2/certificates/cs", direct=True
    )
    with pytest.raises(ResultVerificationError, match="may not sign"):
        await _verify(world, measurement)


async def test_unfinished_measurement_has_no_results_to_verify(world: ConsentWorld) -> None:
    measurement = _measurement(
        world, world.duchy_signing_keys["aggregator"], "duchies/aggregator/certificates/cs"
    )
    measurement.state = Measurement.COMPUTING
    with pytest.raises(ResultVerificationError, match="COMPUTING"):
        await _verify(world, measurement)
