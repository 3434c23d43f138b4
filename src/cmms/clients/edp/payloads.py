"""What an EDP uploads to a duchy, per protocol: the header's protocol fields and the body bytes.

- LLv2 / reach-only LLv2 (llv2.md §3): the LL-sampled events as a sketch, ElGamal-encrypted under
  the duchies' combined key (counts clamped at the spec's maximum frequency + 1);
- HMSS (hmss_trustee.md §A.1): the capped frequency vector split into a data share (the body, a
  serialized FrequencyVector) and a 48-byte seed, signed and encrypted to the peer duchy's key;
- TrusTee (§B.3): the frequency vector as one byte per register, optionally envelope-encrypted
  with a fresh streaming-AEAD key wrapped by a KMS key-encryption key.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from cmms.api.public.v1 import (
    crypto_pb2,
    frequency_vector_pb2,
    requisition_fulfillment_pb2,
)
from cmms.clients.edp.verification import (
    SPEC_INVALID,
    Protocol,
    RequisitionRefused,
    VerifiedRequisition,
)
from cmms.common import consent
from cmms.crypto import sharing, signing
from cmms.crypto.elgamal import PublicKey
from cmms.crypto.envelope import new_envelope
from cmms.crypto.errors import CryptoError
from cmms.crypto.keystore import KmsClient
from cmms.crypto.prng import SEED_LENGTH
from cmms.crypto.randomness import RandomSource
from cmms.sketch import (
    LiquidLegionsParams,
    LiquidLegionsSketch,
    ReachOnlyLiquidLegionsSketch,
    SamplingInterval,
    VidIndexMap,
    build_frequency_vector,
    ll_vid_sampling_mask,
)
from cmms.sketch.encryption import encrypt_reach_only_sketch, encrypt_sketch
from cmms.sketch.errors import SketchParameterError

Header = requisition_fulfillment_pb2.FulfillRequisitionRequest.Header
TrusTeeHeader = Header.TrusTee
# The TrusTee duchy reads register bytes as signed: only 0..127 survive.
MAX_TRUSTEE_FREQUENCY = 127


@dataclass(frozen=True)
class Upload:
    """A complete fulfilment for one duchy: header (all fields) and body bytes in pieces."""

    header: Header
    body: Iterable[bytes]


def base_header(verified: VerifiedRequisition, build_label: str = "cmms-edp-simulator") -> Header:
    """The fields every MPC fulfilment carries."""
    requisition = verified.requisition
    header = Header(
        name=requisition.name,
        requisition_fingerprint=verified.fingerprint,
        nonce=verified.nonce,
        etag=requisition.etag,
    )
    header.protocol_config.CopyFrom(requisition.protocol_config)
    header.fulfillment_context.build_label = build_label
    return header


def sampled_for_liquid_legions(verified: VerifiedRequisition, events: np.ndarray) -> np.ndarray:
    """The events whose VIDs fall in the spec's sampling interval under the LL VID sampler."""
    interval = verified.measurement_spec.vid_sampling_interval
    try:
        kept = ll_vid_sampling_mask(events, interval.start, interval.width)
    except SketchParameterError as exc:
        raise RequisitionRefused(SPEC_INVALID, str(exc)) from exc
    sampled: np.ndarray = np.asarray(events)[kept]
    return sampled


def liquid_legions_body(
    verified: VerifiedRequisition, events: np.ndarray, random: RandomSource
) -> bytes:
    """The encrypted sketch of the sampled events (198 bytes a register; 66 for reach-only)."""
    if verified.combined_el_gamal_key is None:
        raise RequisitionRefused(SPEC_INVALID, "no combined ElGamal key for an LLv2 requisition")
    key = PublicKey(verified.combined_el_gamal_key)
    sampled = sampled_for_liquid_legions(verified, events)
    config = verified.requisition.protocol_config
    try:
        if verified.protocol is Protocol.LIQUID_LEGIONS_V2:
            params = config.liquid_legions_v2.sketch_params
            sketch = LiquidLegionsSketch.from_vids(
                sampled,
                LiquidLegionsParams(
                    params.decay_rate, params.max_size, params.sampling_indicator_size
                ),
            )
            return encrypt_sketch(sketch, key, max(1, verified.max_frequency), random)
        params = config.reach_only_liquid_legions_v2.sketch_params
        reach_only = ReachOnlyLiquidLegionsSketch.from_vids(
            sampled, params.decay_rate, params.max_size
        )
        return encrypt_reach_only_sketch(reach_only, key, random)
    except SketchParameterError as exc:
        raise RequisitionRefused(SPEC_INVALID, f"bad sketch parameters: {exc}") from exc


def frequency_vector(
    verified: VerifiedRequisition, index_map: VidIndexMap, events: np.ndarray
) -> np.ndarray:
    """Per-register capped counts over the sampled slice of the VID index map (HMSS, TrusTee)."""
    interval = verified.measurement_spec.vid_sampling_interval
    try:
        sampling = SamplingInterval.for_population(len(index_map), interval.start, interval.width)
        return build_frequency_vector(index_map, sampling, events, verified.max_frequency)
    except SketchParameterError as exc:
        raise RequisitionRefused(SPEC_INVALID, str(exc)) from exc


def serialize_frequency_vector(values: np.ndarray) -> bytes:
    """A serialized FrequencyVector (packed varints) holding `values`."""
    message = frequency_vector_pb2.FrequencyVector()
    message.data.extend(np.asarray(values, dtype=np.uint32).tolist())
    return message.SerializeToString()


def hmss_upload(
    verified: VerifiedRequisition,
    vector: np.ndarray,
    seed: bytes,
    signing_key: signing.SigningKey,
) -> Upload:
    """Data share in the body; the seed of the other share signed and encrypted to the peer."""
    routing = verified.hmss
    if routing is None:
        raise RequisitionRefused(SPEC_INVALID, "no HMSS duchy routing")
    if len(seed) != SEED_LENGTH:
        raise ValueError(f"an HMSS seed is {SEED_LENGTH} bytes, got {len(seed)}")
    modulus = verified.requisition.protocol_config.honest_majority_share_shuffle.ring_modulus
    if verified.max_frequency >= modulus:
        raise RequisitionRefused(
            SPEC_INVALID,
            f"ring modulus {modulus} cannot hold frequencies up to {verified.max_frequency}",
        )
    try:
        share = sharing.split(vector, modulus, seed)
    except CryptoError as exc:
        raise RequisitionRefused(SPEC_INVALID, f"cannot share the frequency vector: {exc}") from exc
    signed_seed = consent.sign_message(crypto_pb2.RandomSeed(data=seed), signing_key)
    header = base_header(verified)
    hmss = header.honest_majority_share_shuffle
    hmss.secret_seed.CopyFrom(consent.encrypt_signed(signed_seed, routing.peer_public_keyset))
    hmss.register_count = int(np.asarray(vector).size)
    hmss.data_provider_certificate = verified.requisition.data_provider_certificate
    return Upload(header=header, body=[serialize_frequency_vector(share)])


@dataclass(frozen=True)
class KmsKey:
    """The KMS key-encryption key TrusTee payloads are sealed under, and who may unseal it."""

    client: KmsClient
    kek_uri: str
    workload_identity_provider: str = ""
    impersonated_service_account: str = ""


def trustee_upload(verified: VerifiedRequisition, vector: np.ndarray, kms: KmsKey | None) -> Upload:
    """One byte per register; envelope-encrypted when a KMS key is configured."""
    values = np.asarray(vector)
    if values.size and int(values.max()) > MAX_TRUSTEE_FREQUENCY:
        raise RequisitionRefused(
            SPEC_INVALID, f"TrusTee registers hold at most {MAX_TRUSTEE_FREQUENCY} impressions"
        )
    payload = values.astype(np.uint8).tobytes()
    header = base_header(verified)
    trustee = header.trus_tee
    if kms is None:
        trustee.data_format = TrusTeeHeader.FREQUENCY_VECTOR
        return Upload(header=header, body=[payload])
    dek, encrypted_dek = new_envelope(kms.client, kms.kek_uri)
    trustee.data_format = TrusTeeHeader.ENCRYPTED_FREQUENCY_VECTOR
    envelope = trustee.envelope_encryption
    envelope.encrypted_dek.format = crypto_pb2.EncryptionKey.TINK_ENCRYPTED_KEYSET
    envelope.encrypted_dek.data = encrypted_dek
    envelope.kms_kek_uri = kms.kek_uri
    envelope.workload_identity_provider = kms.workload_identity_provider
    envelope.impersonated_service_account = kms.impersonated_service_account
    return Upload(header=header, body=list(dek.encrypt_chunks([payload])))
