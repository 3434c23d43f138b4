"""The stateless checks of CreateMeasurement (§3.4 steps 1-7), producing a `NewMeasurement`.

Protocol-dependent checks and everything that reads the database happen in the repository.
"""

from __future__ import annotations

import numpy as np
from google.protobuf.message import DecodeError

from cmms.api.public.v1 import common_pb2, crypto_pb2, measurement_spec_pb2, measurements_pb2
from cmms.kingdom import names
from cmms.kingdom.api.views import MEASUREMENT_SPEC_TYPE_URL, SIGNED_MESSAGE_TYPE_URL
from cmms.kingdom.db.measurements import NewMeasurement, NewRequisition
from cmms.kingdom.errors import invalid_argument
from cmms.kingdom.planning import MeasurementType

PUBLIC_API_VERSION = "v1"
MeasurementSpec = measurement_spec_pb2.MeasurementSpec


def _valid_privacy(params: common_pb2.DifferentialPrivacyParams) -> bool:
    return params.epsilon > 0 and params.delta >= 0


def _check_sampling(spec: MeasurementSpec) -> None:
    interval = spec.vid_sampling_interval
    if not (0 < interval.width <= 1) or not (0 <= interval.start <= 1):
        raise invalid_argument("vid_sampling_interval needs width in (0, 1] and start in [0, 1]")


def measurement_type_of(spec: MeasurementSpec) -> MeasurementType:
    """Check the type-specific rules and return the type (INVALID_ARGUMENT if broken)."""
    kind = spec.WhichOneof("measurement_type")
    if kind == "reach":
        if not _valid_privacy(spec.reach.privacy_params):
            raise invalid_argument("reach.privacy_params need epsilon > 0 and delta >= 0")
        _check_sampling(spec)
        return MeasurementType.REACH
    if kind == "reach_and_frequency":
        rf = spec.reach_and_frequency
        if not (
            _valid_privacy(rf.reach_privacy_params) and _valid_privacy(rf.frequency_privacy_params)
        ):
            raise invalid_argument(
                "reach and frequency privacy params need epsilon > 0, delta >= 0"
            )
        if rf.maximum_frequency <= 1:
            raise invalid_argument("maximum_frequency must be greater than 1")
        _check_sampling(spec)
        return MeasurementType.REACH_AND_FREQUENCY
    if kind == "impression":
        if not _valid_privacy(spec.impression.privacy_params):
            raise invalid_argument("impression.privacy_params need epsilon > 0 and delta >= 0")
        if spec.impression.maximum_frequency_per_user <= 0:
            raise invalid_argument("maximum_frequency_per_user must be positive")
        return MeasurementType.IMPRESSION
    if kind == "duration":
        if not _valid_privacy(spec.duration.privacy_params):
            raise invalid_argument("duration.privacy_params need epsilon > 0 and delta >= 0")
        if not spec.duration.HasField("maximum_watch_duration_per_user"):
            raise invalid_argument("maximum_watch_duration_per_user is required")
        return MeasurementType.DURATION
    if kind == "population":
        if not spec.model_line:
            raise invalid_argument("model_line is required for a population measurement")
        return MeasurementType.POPULATION
    raise invalid_argument("measurement_spec has no measurement type")


def validate_create_request(
    mc_id: str, request: measurements_pb2.CreateMeasurementRequest
) -> NewMeasurement:
    """Steps 2-7 of §3.4 (the caller check of step 1 is the servicer's)."""
    measurement = request.measurement
    if not measurement.data_providers:
        raise invalid_argument("data_providers is empty")
    dp_ids = []
    for entry in measurement.data_providers:
        dp_id = names.parse_data_provider(entry.key)
        if dp_id is None:
            raise invalid_argument(f"bad data provider name {entry.key!r}")
        dp_ids.append(dp_id)
    certificate = names.parse_certificate(measurement.measurement_consumer_certificate)
    if (
        certificate is None
        or certificate.owner.kind is not names.OwnerKind.MEASUREMENT_CONSUMER
        or certificate.owner.id != mc_id
    ):
        raise invalid_argument(
            "measurement_consumer_certificate must be a certificate of the parent"
        )
    signed_spec = measurement.measurement_spec
    if (
        not signed_spec.HasField("message")
        or signed_spec.message.type_url != MEASUREMENT_SPEC_TYPE_URL
    ):
        raise invalid_argument("measurement_spec must hold a MeasurementSpec")
    try:
        spec = MeasurementSpec.FromString(signed_spec.message.value)
    except DecodeError as exc:
        raise invalid_argument("measurement_spec does not parse") from exc
    if not spec.HasField("measurement_public_key"):
        raise invalid_argument("measurement_public_key is required")
    if len(set(spec.nonce_hashes)) != len(spec.nonce_hashes):
        raise invalid_argument("nonce_hashes has duplicates")
    measurement_type = measurement_type_of(spec)
    if len(set(dp_ids)) != len(dp_ids):
        raise invalid_argument("a data provider appears twice")
    requisitions = []
    for dp_id, entry in zip(dp_ids, measurement.data_providers, strict=True):
        value = entry.value
        dp_certificate = names.parse_certificate(value.data_provider_certificate)
        if dp_certificate is None or dp_certificate.owner.kind is not names.OwnerKind.DATA_PROVIDER:
            raise invalid_argument(f"{entry.key}: bad data_provider_certificate")
        if not value.HasField("data_provider_public_key") or (
            value.data_provider_public_key.format
            == crypto_pb2.EncryptionPublicKey.FORMAT_UNSPECIFIED
        ):
            raise invalid_argument(f"{entry.key}: data_provider_public_key is required")
        if not value.HasField("encrypted_requisition_spec") or (
            value.encrypted_requisition_spec.type_url != SIGNED_MESSAGE_TYPE_URL
        ):
            raise invalid_argument(
                f"{entry.key}: encrypted_requisition_spec must be an encrypted SignedMessage"
            )
        if not value.nonce_hash:
            raise invalid_argument(f"{entry.key}: nonce_hash is required")
        if value.nonce_hash not in spec.nonce_hashes:
            raise invalid_argument(f"{entry.key}: nonce_hash is not in the spec's nonce_hashes")
        requisitions.append(
            NewRequisition(
                data_provider_id=dp_id,
                data_provider_public_key=value.data_provider_public_key.SerializeToString(),
                encrypted_requisition_spec=value.encrypted_requisition_spec.ciphertext,
                nonce_hash=value.nonce_hash,
            )
        )
    if len(spec.nonce_hashes) != len(dp_ids):
        raise invalid_argument("nonce_hashes must have one entry per data provider")
    interval = spec.vid_sampling_interval
    return NewMeasurement(
        measurement_consumer_id=mc_id,
        measurement_consumer_certificate_id=certificate.certificate_id,
        measurement_reference_id=measurement.measurement_reference_id,
        request_id=request.request_id,
        api_version=PUBLIC_API_VERSION,
        measurement_spec=signed_spec.message.value,
        measurement_spec_signature=signed_spec.signature,
        measurement_spec_signature_algorithm_oid=signed_spec.signature_algorithm_oid,
        measurement_type=measurement_type,
        # In float32, as EDPs compute it: 0.2f + 0.8f is exactly 1 there.
        sampling_interval_wraps=bool(np.float32(interval.start) + np.float32(interval.width) > 1),
        requisitions=tuple(requisitions),
        maximum_frequency=(
            spec.reach_and_frequency.maximum_frequency
            if measurement_type is MeasurementType.REACH_AND_FREQUENCY
            else 1
        ),
    )
