"""Consent-signaling messages (kingdom spec §4.2-§4.4): sign, verify, encrypt, nonces, fingerprints.

A `SignedMessage` carries `Any(T)` and a signature over `Any.value` byte for byte; verifiers never
re-serialize. An `EncryptedMessage` is a Tink hybrid ciphertext of a serialized SignedMessage.
Certificates are checked against a trust store whose roots are bound to their owners, so a
signature by, say, an EDP's certificate cannot pass for the MC's.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TypeVar

from cryptography import x509
from google.protobuf import any_pb2
from google.protobuf.message import DecodeError, Message

from cmms.api.public.v1 import crypto_pb2
from cmms.common.identity import TrustConfig
from cmms.crypto import signing
from cmms.crypto.errors import DecryptionError, InvalidKeyError, SignatureError
from cmms.crypto.hybrid import HybridPrivateKey, HybridPublicKey
from cmms.crypto.randomness import RandomSource

TYPE_URL_PREFIX = "type.googleapis.com/"
SIGNED_MESSAGE_TYPE_URL = TYPE_URL_PREFIX + crypto_pb2.SignedMessage.DESCRIPTOR.full_name
NONCE_BYTES = 8

M = TypeVar("M", bound=Message)


class ConsentSignalError(Exception):
    """A signature, certificate, ciphertext or nonce does not check out."""


def type_url(message: Message) -> str:
    """`type.googleapis.com/<full name>` of `message`'s type."""
    return TYPE_URL_PREFIX + message.DESCRIPTOR.full_name


def sign_message(message: Message, key: signing.SigningKey) -> crypto_pb2.SignedMessage:
    """`message` serialized once, packed in an Any, and signed over exactly those bytes."""
    payload = message.SerializeToString()
    oid = signing.default_signature_algorithm_oid(key)
    return crypto_pb2.SignedMessage(
        message=any_pb2.Any(type_url=type_url(message), value=payload),
        signature=signing.sign(key, payload, oid),
        signature_algorithm_oid=oid,
    )


def unpack(signed: crypto_pb2.SignedMessage, message_type: type[M]) -> M:
    """The inner message, parsed from the signed bytes; its type URL must match."""
    expected = TYPE_URL_PREFIX + message_type.DESCRIPTOR.full_name
    if signed.message.type_url != expected:
        raise ConsentSignalError(
            f"signed message holds {signed.message.type_url or 'nothing'!r}, expected {expected!r}"
        )
    try:
        return message_type.FromString(signed.message.value)
    except DecodeError as exc:
        raise ConsentSignalError(f"signed {expected} does not parse: {exc}") from exc


def certificate_owner(certificate_name: str) -> str:
    """`dataProviders/edp1/certificates/abc` -> `dataProviders/edp1`."""
    owner, separator, certificate_id = certificate_name.rpartition("/certificates/")
    if not separator or not owner or not certificate_id or "/" in certificate_id:
        raise ConsentSignalError(f"not a certificate name: {certificate_name!r}")
    return owner


def verify_signed(
    signed: crypto_pb2.SignedMessage,
    certificate: x509.Certificate,
    *,
    trust_store: signing.TrustStore,
    now: datetime,
    expected_owner: str | None = None,
) -> None:
    """Chain `certificate` to its owner's trusted root and check the signature over the payload."""
    try:
        signing.verify_trusted(
            certificate,
            signed.message.value,
            signed.signature,
            signed.signature_algorithm_oid,
            trust_store=trust_store,
            now=now,
            expected_owner=expected_owner,
        )
    except SignatureError as exc:
        raise ConsentSignalError(str(exc)) from exc


def encrypt_signed(
    signed: crypto_pb2.SignedMessage, public_keyset: bytes
) -> crypto_pb2.EncryptedMessage:
    """Hybrid-encrypt the serialized SignedMessage to a binary Tink public keyset."""
    try:
        key = HybridPublicKey.from_keyset(public_keyset)
    except InvalidKeyError as exc:
        raise ConsentSignalError(f"unusable encryption public key: {exc}") from exc
    return crypto_pb2.EncryptedMessage(
        ciphertext=key.encrypt(signed.SerializeToString()), type_url=SIGNED_MESSAGE_TYPE_URL
    )


def decrypt_signed(
    encrypted: crypto_pb2.EncryptedMessage, private_key: HybridPrivateKey
) -> crypto_pb2.SignedMessage:
    """The SignedMessage inside `encrypted`; `ConsentSignalError` if it does not open or parse."""
    if encrypted.type_url and encrypted.type_url != SIGNED_MESSAGE_TYPE_URL:
        raise ConsentSignalError(f"encrypted message holds {encrypted.type_url!r}, not a signature")
    try:
        plaintext = private_key.decrypt(encrypted.ciphertext)
        return crypto_pb2.SignedMessage.FromString(plaintext)
    except (DecryptionError, DecodeError) as exc:
        raise ConsentSignalError(f"cannot decrypt the signed message: {exc}") from exc


def encryption_public_key(public_keyset: bytes) -> crypto_pb2.EncryptionPublicKey:
    """A binary Tink public keyset as the API's EncryptionPublicKey."""
    return crypto_pb2.EncryptionPublicKey(
        format=crypto_pb2.EncryptionPublicKey.TINK_KEYSET, data=public_keyset
    )


def nonce_hash(nonce: int) -> bytes:
    """SHA-256 of the nonce's 64 bits, big-endian (a negative nonce hashes as its unsigned twin)."""
    return hashlib.sha256((nonce % 2**64).to_bytes(NONCE_BYTES, "big")).digest()


def random_nonce(random: RandomSource) -> int:
    """A uniformly random non-zero unsigned 64-bit nonce (0 is rejected everywhere)."""
    while True:
        nonce = int.from_bytes(random.randbytes(NONCE_BYTES), "big")
        if nonce:
            return nonce


def requisition_fingerprint(measurement_spec: bytes, requisition_spec_ciphertext: bytes) -> bytes:
    """SHA-256(MeasurementSpec bytes || SHA-256(encrypted RequisitionSpec ciphertext))."""
    inner = hashlib.sha256(requisition_spec_ciphertext).digest()
    return hashlib.sha256(measurement_spec + inner).digest()


def trust_store_with_owners(
    all_root_certs_pem: bytes, trust_config: TrustConfig
) -> signing.TrustStore:
    """Every root of the bundle, each bound to the party the trust config names for its SKID."""
    store = signing.TrustStore()
    for root in signing.load_certificates_pem(all_root_certs_pem):
        principal = trust_config.principal_for_akid(signing.subject_key_identifier(root))
        store.add(root, owner=principal.resource_name if principal else None)
    return store
