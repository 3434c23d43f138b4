"""Computation details and requisitions for mill stage tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cmms.api.internal.duchy.protocol.v1 import (
    common_pb2,
    hmss_pb2,
    llv2_pb2,
    reach_only_llv2_pb2,
    trustee_pb2,
)
from cmms.api.internal.duchy.v1 import computation_details_pb2 as details_pb2
from cmms.api.public.v1 import crypto_pb2, measurement_spec_pb2, measurements_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.common import consent
from cmms.crypto import signing
from cmms.crypto.hybrid import HybridPrivateKey
from cmms.duchy.mill.kingdom import SetResultRequest

ComputationDetails = details_pb2.ComputationDetails
TrusTee = trustee_pb2.TrusTee
Hmss = hmss_pb2.HonestMajorityShareShuffle
MeasurementResult = measurements_pb2.Measurement.Result


def kingdom_details(consumer_key: HybridPrivateKey) -> ComputationDetails.KingdomComputationDetails:
    return ComputationDetails.KingdomComputationDetails(
        public_api_version="v1",
        measurement_public_key=crypto_pb2.EncryptionPublicKey(
            format=crypto_pb2.EncryptionPublicKey.TINK_KEYSET,
            data=consumer_key.public_key().keyset(),
        ),
        participant_count=3,
    )


def requisition_key(requisition_id: str) -> details_pb2.ExternalRequisitionKey:
    return details_pb2.ExternalRequisitionKey(
        external_requisition_id=requisition_id,
        requisition_fingerprint=hashlib.sha256(requisition_id.encode()).digest(),
    )


def requisitions(
    ids: Sequence[str], fulfilling_duchy: str = ""
) -> list[details_pb2.RequisitionEntry]:
    return [
        details_pb2.RequisitionEntry(
            key=requisition_key(rid),
            value=details_pb2.RequisitionDetails(
                nonce_hash=consent.nonce_hash(index + 1),
                nonce=index + 1,
                external_fulfilling_duchy_id=fulfilling_duchy,
            ),
        )
        for index, rid in enumerate(ids)
    ]


def trustee_details(
    consumer_key: HybridPrivateKey,
    *,
    maximum_frequency: int = 3,
    mechanism: int = computation_pb2.NONE,
) -> ComputationDetails:
    reach = maximum_frequency == 1
    return ComputationDetails(
        kingdom_computation=kingdom_details(consumer_key),
        trus_tee=TrusTee.ComputationDetails(
            role=common_pb2.AGGREGATOR,
            measurement_type=common_pb2.REACH if reach else common_pb2.REACH_AND_FREQUENCY,
            parameters=TrusTee.Parameters(
                maximum_frequency=maximum_frequency,
                noise_mechanism=mechanism,  # type: ignore[arg-type]
                vid_sampling_interval_width=1.0,
            ),
        ),
    )


def open_result(
    request: SetResultRequest, consumer_key: HybridPrivateKey, signer_certificate: bytes
) -> MeasurementResult:
    """Decrypt the result as the consumer does and check the aggregator's signature."""
    signed = consent.decrypt_signed(
        crypto_pb2.EncryptedMessage(
            ciphertext=request.encrypted_result, type_url=consent.SIGNED_MESSAGE_TYPE_URL
        ),
        consumer_key,
    )
    signing.verify(
        signing.load_certificate(signer_certificate),
        signed.message.value,
        signed.signature,
        signed.signature_algorithm_oid,
    )
    return consent.unpack(signed, MeasurementResult)


def hmss_details(
    consumer_key: HybridPrivateKey,
    role: int,
    *,
    random_seed: bytes = b"",
    key_pair: Hmss.EncryptionKeyPair | None = None,
    maximum_frequency: int = 3,
    ring_modulus: int = 127,
    mechanism: int = computation_pb2.NONE,
) -> ComputationDetails:
    reach = maximum_frequency == 1
    parameters = Hmss.Parameters(
        measurement_type=common_pb2.REACH if reach else common_pb2.REACH_AND_FREQUENCY,
        maximum_frequency=maximum_frequency,
        ring_modulus=ring_modulus,
        noise_mechanism=mechanism,  # type: ignore[arg-type]
        vid_sampling_interval_width=1.0,
    )
    if mechanism != computation_pb2.NONE:
        parameters.reach_dp_params.CopyFrom(
            computation_pb2.DifferentialPrivacyParams(epsilon=1.0, delta=1e-9)
        )
        if not reach:
            parameters.frequency_dp_params.CopyFrom(
                computation_pb2.DifferentialPrivacyParams(epsilon=1.0, delta=1e-9)
            )
    details = Hmss.ComputationDetails(
        role=role,  # type: ignore[arg-type]
        parameters=parameters,
        random_seed=random_seed,
        non_aggregators=["worker1", "worker2"],
        aggregator="aggregator",
    )
    if key_pair is not None:
        details.encryption_key_pair.CopyFrom(key_pair)
    return ComputationDetails(
        kingdom_computation=kingdom_details(consumer_key), honest_majority_share_shuffle=details
    )


def hmss_fulfillment(
    secret_seed_ciphertext: bytes, register_count: int, certificate: str
) -> details_pb2.RequisitionProtocolDetails:
    return details_pb2.RequisitionProtocolDetails(
        honest_majority_share_shuffle=details_pb2.RequisitionProtocolDetails.HonestMajorityShareShuffle(
            secret_seed_ciphertext=secret_seed_ciphertext,
            register_count=register_count,
            data_provider_certificate=certificate,
        )
    )


def liquid_legions_details(
    consumer_key: HybridPrivateKey,
    protocol_field: str,
    role: int,
    *,
    nonces: Sequence[int],
    maximum_frequency: int = 1,
    decay_rate: float = 12.0,
    size: int = 400,
) -> ComputationDetails:
    spec = measurement_spec_pb2.MeasurementSpec(
        nonce_hashes=[consent.nonce_hash(n) for n in nonces],
        vid_sampling_interval=measurement_spec_pb2.MeasurementSpec.VidSamplingInterval(width=1.0),
    )
    kingdom = kingdom_details(consumer_key)
    kingdom.measurement_spec = spec.SerializeToString()
    sketch = common_pb2.LiquidLegionsSketchParameters(decay_rate=decay_rate, size=size)
    noise = common_pb2.LiquidLegionsNoiseConfig(noise_mechanism=computation_pb2.GEOMETRIC)
    details = ComputationDetails(kingdom_computation=kingdom)
    if protocol_field == "liquid_legions_v2":
        details.liquid_legions_v2.CopyFrom(
            llv2_pb2.LiquidLegionsV2.ComputationDetails(
                role=role,  # type: ignore[arg-type]
                parameters=llv2_pb2.LiquidLegionsV2.Parameters(
                    maximum_frequency=maximum_frequency,
                    sketch_parameters=sketch,
                    noise=noise,
                    requisition_count=len(nonces),
                ),
            )
        )
    else:
        details.reach_only_liquid_legions_v2.CopyFrom(
            reach_only_llv2_pb2.ReachOnlyLiquidLegionsV2.ComputationDetails(
                role=role,  # type: ignore[arg-type]
                parameters=reach_only_llv2_pb2.ReachOnlyLiquidLegionsV2.Parameters(
                    sketch_parameters=sketch, noise=noise, requisition_count=len(nonces)
                ),
            )
        )
    return details
