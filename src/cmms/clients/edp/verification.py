"""What an EDP checks before it touches its data (kingdom spec §4.5), and what it learns doing so.

Any failure raises `RequisitionRefused` with the justification the EDP then sends to the Kingdom:
CONSENT_SIGNAL_INVALID for signatures, certificates, ciphertexts, keys and nonces; SPEC_INVALID
for a malformed protocol or duchy list; UNFULFILLABLE for what the simulator cannot measure.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime

from cmms.api.public.v1 import (
    crypto_pb2,
    measurement_spec_pb2,
    protocol_config_pb2,
    requisition_spec_pb2,
    requisitions_pb2,
)
from cmms.clients.certificates import CertificateSource
from cmms.clients.identity import PartyKeys
from cmms.common import consent
from cmms.common.consent import ConsentSignalError
from cmms.crypto import elgamal, group
from cmms.crypto.errors import CryptoError
from cmms.crypto.hybrid import HybridPublicKey

Refusal = requisitions_pb2.Requisition.Refusal
CONSENT_SIGNAL_INVALID = Refusal.CONSENT_SIGNAL_INVALID
SPEC_INVALID = Refusal.SPEC_INVALID
UNFULFILLABLE = Refusal.UNFULFILLABLE

MeasurementType = protocol_config_pb2.ProtocolConfig.MeasurementType
_SPEC_TYPES = {
    "reach": protocol_config_pb2.ProtocolConfig.REACH,
    "reach_and_frequency": protocol_config_pb2.ProtocolConfig.REACH_AND_FREQUENCY,
}
_DUCHY_PREFIX = "duchies/"


class RequisitionRefused(Exception):
    """The requisition must be refused with `justification` (a Refusal.Justification value)."""

    def __init__(self, justification: int, message: str) -> None:
        super().__init__(message)
        self.justification = justification
        self.message = message

    def refusal(self) -> requisitions_pb2.Requisition.Refusal:
        return Refusal(justification=self.justification, message=self.message)  # type: ignore[arg-type]


class Protocol(enum.Enum):
    """The protocol of a requisition; values are the ProtocolConfig oneof field names."""

    LIQUID_LEGIONS_V2 = "liquid_legions_v2"
    REACH_ONLY_LIQUID_LEGIONS_V2 = "reach_only_liquid_legions_v2"
    HONEST_MAJORITY_SHARE_SHUFFLE = "honest_majority_share_shuffle"
    TRUS_TEE = "trus_tee"
    DIRECT = "direct"

    @property
    def is_liquid_legions(self) -> bool:
        return self in (Protocol.LIQUID_LEGIONS_V2, Protocol.REACH_ONLY_LIQUID_LEGIONS_V2)


@dataclass(frozen=True)
class HmssRouting:
    """HMSS: the data goes to `fulfilling_duchy`, the seed is encrypted to `peer_duchy`'s key."""

    fulfilling_duchy: str
    peer_duchy: str
    peer_public_keyset: bytes


@dataclass(frozen=True)
class VerifiedRequisition:
    """A requisition whose consent signals all checked out, with its decoded specs."""

    requisition: requisitions_pb2.Requisition
    measurement_spec: measurement_spec_pb2.MeasurementSpec
    requisition_spec: requisition_spec_pb2.RequisitionSpec
    protocol: Protocol
    fingerprint: bytes
    duchies: tuple[str, ...]
    combined_el_gamal_key: bytes | None = None
    hmss: HmssRouting | None = None

    @property
    def nonce(self) -> int:
        return self.requisition_spec.nonce

    @property
    def is_reach_and_frequency(self) -> bool:
        return self.measurement_spec.WhichOneof("measurement_type") == "reach_and_frequency"

    @property
    def max_frequency(self) -> int:
        """The spec's maximum frequency for R&F; 1 for reach (every VID counts once)."""
        if self.is_reach_and_frequency:
            return self.measurement_spec.reach_and_frequency.maximum_frequency
        return 1


def duchy_id(entry_key: str) -> str:
    """`duchies/worker1` -> `worker1`."""
    if not entry_key.startswith(_DUCHY_PREFIX) or "/" in entry_key[len(_DUCHY_PREFIX) :]:
        raise RequisitionRefused(SPEC_INVALID, f"not a duchy name: {entry_key!r}")
    return entry_key[len(_DUCHY_PREFIX) :]


def _measurement_consumer(measurement_name: str) -> str:
    parts = measurement_name.split("/")
    if len(parts) != 4 or parts[0] != "measurementConsumers" or parts[2] != "measurements":
        raise RequisitionRefused(SPEC_INVALID, f"not a measurement name: {measurement_name!r}")
    return "/".join(parts[:2])


async def verify_requisition(
    requisition: requisitions_pb2.Requisition,
    keys: PartyKeys,
    certificates: CertificateSource,
    *,
    now: datetime,
) -> VerifiedRequisition:
    """Run every EDP-side check; raise `RequisitionRefused` on the first that fails."""
    try:
        return await _verify(requisition, keys, certificates, now)
    except ConsentSignalError as exc:
        raise RequisitionRefused(CONSENT_SIGNAL_INVALID, str(exc)) from exc


async def _verify(
    requisition: requisitions_pb2.Requisition,
    keys: PartyKeys,
    certificates: CertificateSource,
    now: datetime,
) -> VerifiedRequisition:
    protocol_name = requisition.protocol_config.WhichOneof("protocol")
    if protocol_name is None:
        raise RequisitionRefused(SPEC_INVALID, "the protocol config names no protocol")
    protocol = Protocol(protocol_name)

    # 1. The MeasurementSpec is the consumer's, signed by a certificate chaining to its root.
    consumer = _measurement_consumer(requisition.measurement)
    if consent.certificate_owner(requisition.measurement_consumer_certificate) != consumer:
        raise ConsentSignalError(
            f"{requisition.measurement_consumer_certificate} is not a certificate of {consumer}"
        )
    consumer_certificate = await certificates.get(requisition.measurement_consumer_certificate)

    def verify_consumer_signature(signed: crypto_pb2.SignedMessage) -> None:
        consent.verify_signed(
            signed,
            consumer_certificate,
            trust_store=keys.trust_store,
            now=now,
            expected_owner=consumer,
        )

    verify_consumer_signature(requisition.measurement_spec)
    measurement_spec = consent.unpack(
        requisition.measurement_spec, measurement_spec_pb2.MeasurementSpec
    )

    # 2-3. The RequisitionSpec was encrypted to our key and signed by the same consumer.
    try:
        # Compare parsed keysets: two serializations of one keyset may differ byte for byte.
        named_key = HybridPublicKey.from_keyset(requisition.data_provider_public_key.data)
    except CryptoError as exc:
        raise ConsentSignalError(f"the requisition's data provider key: {exc}") from exc
    if named_key.keyset() != keys.encryption_key.public_key().keyset():
        raise ConsentSignalError("the requisition spec was encrypted to a key that is not ours")
    signed_requisition_spec = consent.decrypt_signed(
        requisition.encrypted_requisition_spec, keys.encryption_key
    )
    verify_consumer_signature(signed_requisition_spec)
    requisition_spec = consent.unpack(signed_requisition_spec, requisition_spec_pb2.RequisitionSpec)

    # 4-5. Both specs belong to one measurement: same result key, and our nonce is in the spec.
    if requisition_spec.measurement_public_key.SerializeToString(
        deterministic=True
    ) != measurement_spec.measurement_public_key.SerializeToString(deterministic=True):
        raise ConsentSignalError("the two specs name different measurement public keys")
    if requisition_spec.nonce == 0:
        raise ConsentSignalError("the requisition spec nonce is 0")
    if consent.nonce_hash(requisition_spec.nonce) not in set(measurement_spec.nonce_hashes):
        raise ConsentSignalError(
            "the nonce's hash is not among the measurement spec's nonce hashes"
        )

    _check_measurement_type(requisition, measurement_spec)
    fingerprint = consent.requisition_fingerprint(
        requisition.measurement_spec.message.value,
        requisition.encrypted_requisition_spec.ciphertext,
    )
    verified = VerifiedRequisition(
        requisition=requisition,
        measurement_spec=measurement_spec,
        requisition_spec=requisition_spec,
        protocol=protocol,
        fingerprint=fingerprint,
        duchies=tuple(sorted(duchy_id(entry.key) for entry in requisition.duchies)),
    )
    # 6-7. The duchies' keys are theirs, and there are as many as the protocol needs.
    if protocol.is_liquid_legions:
        key = await _combined_el_gamal_key(requisition, protocol, keys, certificates, now)
        return dataclasses.replace(verified, combined_el_gamal_key=key)
    if protocol is Protocol.HONEST_MAJORITY_SHARE_SHUFFLE:
        routing = await _hmss_routing(requisition, keys, certificates, now)
        return dataclasses.replace(verified, hmss=routing)
    if protocol is Protocol.TRUS_TEE:
        entries = [e for e in requisition.duchies if e.value.WhichOneof("protocol") == "trus_tee"]
        if len(requisition.duchies) != 1 or len(entries) != 1:
            raise RequisitionRefused(
                SPEC_INVALID, f"TrusTee needs exactly 1 duchy, got {len(requisition.duchies)}"
            )
    return verified


def _check_measurement_type(
    requisition: requisitions_pb2.Requisition, spec: measurement_spec_pb2.MeasurementSpec
) -> None:
    kind = spec.WhichOneof("measurement_type")
    if kind not in _SPEC_TYPES:
        raise RequisitionRefused(UNFULFILLABLE, f"the simulator measures reach and R&F, not {kind}")
    if requisition.protocol_config.measurement_type != _SPEC_TYPES[kind]:
        raise RequisitionRefused(
            SPEC_INVALID, f"the protocol config's measurement type does not match a {kind} spec"
        )
    if kind == "reach_and_frequency" and spec.reach_and_frequency.maximum_frequency < 1:
        raise RequisitionRefused(SPEC_INVALID, "maximum frequency must be at least 1")


async def _combined_el_gamal_key(
    requisition: requisitions_pb2.Requisition,
    protocol: Protocol,
    keys: PartyKeys,
    certificates: CertificateSource,
    now: datetime,
) -> bytes:
    if not requisition.duchies:
        raise RequisitionRefused(SPEC_INVALID, "an LLv2 requisition lists no duchy")
    elements: list[bytes] = []
    for entry in requisition.duchies:
        value = entry.value
        if value.WhichOneof("protocol") != protocol.value:
            raise RequisitionRefused(SPEC_INVALID, f"{entry.key} carries no {protocol.value} key")
        signed_key = getattr(value, protocol.value).el_gamal_public_key
        await _verify_duchy_signature(
            entry.key, value.duchy_certificate, signed_key, keys, certificates, now
        )
        key = consent.unpack(signed_key, crypto_pb2.ElGamalPublicKey)
        if key.generator != group.GENERATOR:
            raise RequisitionRefused(
                SPEC_INVALID, f"{entry.key}'s ElGamal key uses another generator"
            )
        try:
            elgamal.PublicKey(key.element)
        except CryptoError as exc:
            raise RequisitionRefused(SPEC_INVALID, f"{entry.key}'s ElGamal key: {exc}") from exc
        elements.append(key.element)
    return elgamal.combine_public_keys(elements)


async def _hmss_routing(
    requisition: requisitions_pb2.Requisition,
    keys: PartyKeys,
    certificates: CertificateSource,
    now: datetime,
) -> HmssRouting:
    entries = list(requisition.duchies)
    if len(entries) != 2 or any(
        e.value.WhichOneof("protocol") != "honest_majority_share_shuffle" for e in entries
    ):
        raise RequisitionRefused(
            SPEC_INVALID, f"HMSS needs exactly 2 duchy entries, got {len(entries)}"
        )
    with_key = [e for e in entries if e.value.honest_majority_share_shuffle.HasField("public_key")]
    if len(with_key) != 1:
        raise RequisitionRefused(
            SPEC_INVALID, f"exactly 1 HMSS duchy must carry a key, {len(with_key)} do"
        )
    peer = with_key[0]
    fulfilling = entries[1] if entries[0] is peer else entries[0]
    signed_key = peer.value.honest_majority_share_shuffle.public_key
    await _verify_duchy_signature(
        peer.key, peer.value.duchy_certificate, signed_key, keys, certificates, now
    )
    public_key = consent.unpack(signed_key, crypto_pb2.EncryptionPublicKey)
    if public_key.format != crypto_pb2.EncryptionPublicKey.TINK_KEYSET:
        raise RequisitionRefused(SPEC_INVALID, f"{peer.key}'s key is not a Tink keyset")
    try:
        HybridPublicKey.from_keyset(public_key.data)
    except CryptoError as exc:
        raise RequisitionRefused(SPEC_INVALID, f"{peer.key}'s key: {exc}") from exc
    return HmssRouting(
        fulfilling_duchy=duchy_id(fulfilling.key),
        peer_duchy=duchy_id(peer.key),
        peer_public_keyset=public_key.data,
    )


async def _verify_duchy_signature(
    duchy_name: str,
    certificate_name: str,
    signed: crypto_pb2.SignedMessage,
    keys: PartyKeys,
    certificates: CertificateSource,
    now: datetime,
) -> None:
    if consent.certificate_owner(certificate_name) != duchy_name:
        raise ConsentSignalError(f"{certificate_name} is not a certificate of {duchy_name}")
    certificate = await certificates.get(certificate_name)
    consent.verify_signed(
        signed, certificate, trust_store=keys.trust_store, now=now, expected_owner=duchy_name
    )
