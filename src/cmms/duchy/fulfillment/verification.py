"""Checks of an EDP's fulfilment header against the stored requisition (duchy_internals §6.2,
kingdom.md §3.6, §4.4), all made before a byte of the body is stored.

Each check raises a `StatusError`: FAILED_PRECONDITION when the upload contradicts what the
Kingdom told this duchy (nonce, assigned duchy), INVALID_ARGUMENT when the header itself is
incomplete for the computation's protocol.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.api.public.v1 import crypto_pb2, measurement_spec_pb2, requisition_fulfillment_pb2
from cmms.common.grpc import StatusError, fail
from cmms.protocols.liquid_legions.records import REACH_ONLY_REGISTER_SIZE, REGISTER_SIZE
from cmms.protocols.stages import ProtocolType

Header = requisition_fulfillment_pb2.FulfillRequisitionRequest.Header
ProtocolDetails = computation_details_pb2.RequisitionProtocolDetails
TrusTeeDetails = ProtocolDetails.TrusTee
TrusTeeHeader = Header.TrusTee

PUBLIC_API_VERSION = "v1"
_REQUISITION_NAME = re.compile(
    r"dataProviders/([a-z][a-z0-9-]*)/requisitions/([A-Za-z0-9_\-=.~+]+)"
)


@dataclass(frozen=True)
class RequisitionName:
    data_provider_id: str
    requisition_id: str


def parse_requisition_name(name: str) -> RequisitionName:
    match = _REQUISITION_NAME.fullmatch(name)
    if match is None:
        fail(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{name!r} is not 'dataProviders/{{dp}}/requisitions/{{requisition}}'",
        )
    return RequisitionName(match.group(1), match.group(2))


def nonce_hash(nonce: int) -> bytes:
    """SHA-256 of the fixed64 nonce as 8 big-endian bytes."""
    return hashlib.sha256((nonce % 2**64).to_bytes(8, "big")).digest()


def verify_nonce(
    nonce: int,
    details: computation_details_pb2.RequisitionDetails,
    kingdom: computation_details_pb2.ComputationDetails.KingdomComputationDetails,
) -> None:
    """The nonce proves the EDP consented to this spec: its hash is the requisition's and the
    MeasurementSpec lists it."""
    if kingdom.public_api_version not in ("", PUBLIC_API_VERSION):
        fail(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"unsupported public API version {kingdom.public_api_version!r}",
        )
    try:
        spec = measurement_spec_pb2.MeasurementSpec.FromString(kingdom.measurement_spec)
    except DecodeError as error:
        raise StatusError(
            grpc.StatusCode.FAILED_PRECONDITION, "the stored MeasurementSpec does not parse"
        ) from error
    hashed = nonce_hash(nonce)
    if hashed != details.nonce_hash or hashed not in spec.nonce_hashes:
        fail(
            grpc.StatusCode.FAILED_PRECONDITION,
            "the requisition could not be verified: the nonce does not match",
        )


def protocol_details(
    protocol: int,
    header: Header,
    details: computation_details_pb2.RequisitionDetails,
    duchy_id: str,
) -> ProtocolDetails | None:
    """What to record for the protocol, after checking the header carries what it needs."""
    given = header.WhichOneof("protocol")
    if protocol == ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE:
        if given != "honest_majority_share_shuffle":
            fail(grpc.StatusCode.INVALID_ARGUMENT, "an HMSS requisition needs the HMSS header")
        return _hmss_details(header.honest_majority_share_shuffle, details, duchy_id)
    if protocol == ProtocolType.TRUS_TEE:
        if given != "trus_tee":
            fail(grpc.StatusCode.INVALID_ARGUMENT, "a TrusTee requisition needs the TrusTee header")
        return ProtocolDetails(trus_tee=_trustee_details(header.trus_tee))
    if given is not None:
        fail(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"a Liquid Legions requisition takes no {given} header",
        )
    return None


def _hmss_details(
    hmss: Header.HonestMajorityShareShuffle,
    details: computation_details_pb2.RequisitionDetails,
    duchy_id: str,
) -> ProtocolDetails:
    if not hmss.HasField("secret_seed") or not hmss.secret_seed.ciphertext:
        fail(grpc.StatusCode.INVALID_ARGUMENT, "the HMSS header has no secret seed")
    if not hmss.data_provider_certificate.strip():
        fail(grpc.StatusCode.INVALID_ARGUMENT, "the HMSS header has no data provider certificate")
    if details.external_fulfilling_duchy_id != duchy_id:
        fail(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"this requisition is to be fulfilled at duchies/"
            f"{details.external_fulfilling_duchy_id or '(unassigned)'}, not duchies/{duchy_id}",
        )
    return ProtocolDetails(
        honest_majority_share_shuffle=ProtocolDetails.HonestMajorityShareShuffle(
            secret_seed_ciphertext=hmss.secret_seed.ciphertext,
            register_count=hmss.register_count,
            data_provider_certificate=hmss.data_provider_certificate,
        )
    )


def _trustee_details(trustee: TrusTeeHeader) -> TrusTeeDetails:
    if trustee.data_format == TrusTeeHeader.FREQUENCY_VECTOR:
        return TrusTeeDetails(
            data_format=TrusTeeDetails.FREQUENCY_VECTOR,
            population_spec_fingerprint=trustee.population_spec_fingerprint,
        )
    if trustee.data_format != TrusTeeHeader.ENCRYPTED_FREQUENCY_VECTOR:
        fail(grpc.StatusCode.INVALID_ARGUMENT, "the TrusTee header names no data format")
    envelope = trustee.envelope_encryption
    if envelope.encrypted_dek.format != crypto_pb2.EncryptionKey.TINK_ENCRYPTED_KEYSET:
        fail(
            grpc.StatusCode.INVALID_ARGUMENT,
            "an encrypted frequency vector needs a TINK_ENCRYPTED_KEYSET data-encryption key",
        )
    if not envelope.encrypted_dek.data or not envelope.kms_kek_uri:
        fail(
            grpc.StatusCode.INVALID_ARGUMENT,
            "an encrypted frequency vector needs the wrapped key and the KEK URI",
        )
    recorded = TrusTeeDetails(
        data_format=TrusTeeDetails.ENCRYPTED_FREQUENCY_VECTOR,
        encrypted_dek_ciphertext=envelope.encrypted_dek.data,
        kms_kek_uri=envelope.kms_kek_uri,
        workload_identity_provider=envelope.workload_identity_provider,
        impersonated_service_account=envelope.impersonated_service_account,
        population_spec_fingerprint=trustee.population_spec_fingerprint,
    )
    if envelope.HasField("aws_kms_params"):
        recorded.aws_kms_params.CopyFrom(_aws_params(envelope.aws_kms_params))
    return recorded


def _aws_params(
    aws: TrusTeeHeader.EnvelopeEncryption.AwsKmsParams,
) -> TrusTeeDetails.AwsKmsParams:
    audience = aws.WhichOneof("token_audience")
    if audience == "workload_identity_id_token_audience":
        source = TrusTeeDetails.AwsKmsParams.GCP_WORKLOAD_IDENTITY
        value = aws.workload_identity_id_token_audience
    elif audience == "confidential_space_attestation_token_audience":
        source = TrusTeeDetails.AwsKmsParams.CONFIDENTIAL_SPACE
        value = aws.confidential_space_attestation_token_audience
    else:
        fail(grpc.StatusCode.INVALID_ARGUMENT, "AWS KMS parameters need a token audience")
    return TrusTeeDetails.AwsKmsParams(
        role_arn=aws.role_arn,
        role_session_name=aws.role_session_name,
        region=aws.region,
        audience=value,
        credential_source=source,
    )


# The encrypted sketch of a Liquid Legions requisition is a whole number of these records.
_SKETCH_RECORD_SIZES = {
    ProtocolType.LIQUID_LEGIONS_V2: REGISTER_SIZE,
    ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2: REACH_ONLY_REGISTER_SIZE,
}


def sketch_size_error(protocol: int, size: int) -> str | None:
    """Why a requisition body of `size` bytes cannot be this protocol's sketch, or None."""
    record_size = _SKETCH_RECORD_SIZES.get(ProtocolType(protocol))
    if record_size is None or size % record_size == 0:
        return None
    return (
        f"the encrypted sketch is {size} bytes, not a whole number of {record_size}-byte registers"
    )
