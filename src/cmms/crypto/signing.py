"""Consent-signaling signatures and certificate checks (kingdom spec §4.1).

Signatures cover exact bytes (for a SignedMessage: the serialized inner message) and are DER-encoded.
Algorithms are named by OID; an empty OID means "the algorithm that signed the certificate itself".
Certificates chain one level: a leaf to a trusted self-signed root found by the leaf's Authority Key
Identifier. This layer knows nothing about protos.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from cmms.crypto.errors import SignatureError

ECDSA_WITH_SHA256_OID = "1.2.840.10045.4.3.2"
ECDSA_WITH_SHA384_OID = "1.2.840.10045.4.3.3"
ECDSA_WITH_SHA512_OID = "1.2.840.10045.4.3.4"
RSA_WITH_SHA256_OID = "1.2.840.113549.1.1.11"
RSA_WITH_SHA384_OID = "1.2.840.113549.1.1.12"
RSA_WITH_SHA512_OID = "1.2.840.113549.1.1.13"

SigningKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
VerifyingKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True)
class _Algorithm:
    is_ecdsa: bool
    hash_factory: type[hashes.SHA256] | type[hashes.SHA384] | type[hashes.SHA512]


_ALGORITHMS: Mapping[str, _Algorithm] = {
    ECDSA_WITH_SHA256_OID: _Algorithm(True, hashes.SHA256),
    ECDSA_WITH_SHA384_OID: _Algorithm(True, hashes.SHA384),
    ECDSA_WITH_SHA512_OID: _Algorithm(True, hashes.SHA512),
    RSA_WITH_SHA256_OID: _Algorithm(False, hashes.SHA256),
    RSA_WITH_SHA384_OID: _Algorithm(False, hashes.SHA384),
    RSA_WITH_SHA512_OID: _Algorithm(False, hashes.SHA512),
}


def _algorithm(oid: str) -> _Algorithm:
    try:
        return _ALGORITHMS[oid]
    except KeyError:
        raise SignatureError(f"unsupported signature algorithm OID {oid!r}") from None


# --- loading -------------------------------------------------------------------------------------


def load_certificate(data: bytes) -> x509.Certificate:
    """Parse one X.509 certificate, PEM or DER."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise SignatureError(f"not a valid X.509 certificate: {exc}") from exc


def load_certificates_pem(data: bytes) -> list[x509.Certificate]:
    """Parse a PEM bundle of one or more certificates."""
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise SignatureError(f"not a valid PEM certificate bundle: {exc}") from exc
    return certificates


def certificate_der(certificate: x509.Certificate) -> bytes:
    """The DER encoding of `certificate` (the form stored and sent on the wire)."""
    return certificate.public_bytes(serialization.Encoding.DER)


def load_private_key(data: bytes) -> SigningKey:
    """Parse an unencrypted PKCS#8 private key (DER, or PEM); only EC and RSA keys are accepted."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"not a valid unencrypted PKCS#8 private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SignatureError(f"unsupported private key type {type(key).__name__}")
    return key


def private_key_der(key: SigningKey) -> bytes:
    """Unencrypted PKCS#8 DER encoding of `key` (the `*_cs_private.der` format)."""
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# --- signing and verification --------------------------------------------------------------------


def default_signature_algorithm_oid(key: SigningKey | VerifyingKey) -> str:
    """The OID a signer fills in for `key`: SHA-256 with ECDSA or with RSA PKCS#1 v1.5."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return ECDSA_WITH_SHA256_OID
    return RSA_WITH_SHA256_OID


def sign(key: SigningKey, data: bytes, algorithm_oid: str | None = None) -> bytes:
    """Sign the exact bytes `data`; ECDSA signatures are DER-encoded.

    ECDSA nonces are derived deterministically (RFC 6979), so signing needs no injected randomness
    and is reproducible; verifiers cannot tell the difference.
    """
    oid = algorithm_oid or default_signature_algorithm_oid(key)
    algorithm = _algorithm(oid)
    digest = algorithm.hash_factory()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not algorithm.is_ecdsa:
            raise SignatureError(f"algorithm {oid} cannot be used with an EC key")
        return key.sign(data, ec.ECDSA(digest, deterministic_signing=True))
    if algorithm.is_ecdsa:
        raise SignatureError(f"algorithm {oid} cannot be used with an RSA key")
    return key.sign(data, padding.PKCS1v15(), digest)


def verify(
    certificate: x509.Certificate,
    data: bytes,
    signature: bytes,
    algorithm_oid: str = "",
) -> None:
    """Check that `signature` over `data` was made by `certificate`'s key; raise SignatureError if not.

    An empty `algorithm_oid` falls back to the certificate's own signature algorithm.
    """
    oid = algorithm_oid or certificate.signature_algorithm_oid.dotted_string
    algorithm = _algorithm(oid)
    public_key = certificate.public_key()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm.is_ecdsa:
            public_key.verify(signature, data, ec.ECDSA(algorithm.hash_factory()))
        elif isinstance(public_key, rsa.RSAPublicKey) and not algorithm.is_ecdsa:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm.hash_factory())
        else:
            raise SignatureError(
                f"algorithm {oid} does not match the certificate's {type(public_key).__name__} key"
            )
    except InvalidSignature:
        raise SignatureError(
            f"signature does not verify against certificate {certificate.subject.rfc4514_string()}"
        ) from None


# --- certificate path ----------------------------------------------------------------------------


def subject_key_identifier(certificate: x509.Certificate) -> bytes:
    """The certificate's Subject Key Identifier."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        raise SignatureError(
            f"certificate {certificate.subject.rfc4514_string()} has no subject key identifier"
        ) from None
    return extension.value.digest


def authority_key_identifier(certificate: x509.Certificate) -> bytes:
    """The key identifier in the certificate's Authority Key Identifier."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    except x509.ExtensionNotFound:
        extension = None
    if extension is None or extension.value.key_identifier is None:
        raise SignatureError(
            f"certificate {certificate.subject.rfc4514_string()} has no authority key identifier"
        )
    return extension.value.key_identifier


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def _check_validity(certificate: x509.Certificate, now: datetime, role: str) -> None:
    if now < certificate.not_valid_before_utc:
        raise SignatureError(
            f"{role} certificate {certificate.subject.rfc4514_string()} is not valid before "
            f"{certificate.not_valid_before_utc.isoformat()}"
        )
    if now > certificate.not_valid_after_utc:
        raise SignatureError(
            f"{role} certificate {certificate.subject.rfc4514_string()} expired at "
            f"{certificate.not_valid_after_utc.isoformat()}"
        )


@dataclass(frozen=True)
class TrustedRoot:
    """A trusted root certificate and, optionally, the party that owns it."""

    certificate: x509.Certificate
    owner: str | None = None

    @property
    def skid(self) -> bytes:
        return subject_key_identifier(self.certificate)


class TrustStore:
    """Trusted roots keyed by Subject Key Identifier."""

    def __init__(self, roots: Iterable[TrustedRoot | x509.Certificate] = ()) -> None:
        self._roots: dict[bytes, TrustedRoot] = {}
        for root in roots:
            self.add(root)

    @classmethod
    def from_pem_bundle(cls, data: bytes) -> TrustStore:
        """A store holding every certificate of a PEM bundle (e.g. `all_root_certs.pem`)."""
        return cls(load_certificates_pem(data))

    def add(self, root: TrustedRoot | x509.Certificate, owner: str | None = None) -> None:
        """Trust `root`; a CA certificate with a Subject Key Identifier is required."""
        entry = root if isinstance(root, TrustedRoot) else TrustedRoot(root, owner)
        if not _is_ca(entry.certificate):
            raise SignatureError(
                f"root {entry.certificate.subject.rfc4514_string()} is not a CA certificate"
            )
        self._roots[entry.skid] = entry

    def get(self, skid: bytes) -> TrustedRoot | None:
        """The root with this Subject Key Identifier, if trusted."""
        return self._roots.get(skid)

    def __len__(self) -> int:
        return len(self._roots)

    def __contains__(self, skid: object) -> bool:
        return skid in self._roots


def verify_certificate_path(
    leaf: x509.Certificate,
    trust_store: TrustStore,
    *,
    now: datetime,
    expected_root_skid: bytes | None = None,
    expected_owner: str | None = None,
) -> TrustedRoot:
    """Validate `leaf` against the trusted root named by its AKID and return that root.

    Checks the issuer name and signature, both validity windows at `now` and the root's CA flag.
    `expected_root_skid` / `expected_owner` additionally bind the root to one party.
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    now = now.astimezone(UTC)
    akid = authority_key_identifier(leaf)
    if expected_root_skid is not None and akid != expected_root_skid:
        raise SignatureError(
            f"certificate {leaf.subject.rfc4514_string()} is issued by root {akid.hex()}, "
            f"expected root {expected_root_skid.hex()}"
        )
    root = trust_store.get(akid)
    if root is None:
        raise SignatureError(
            f"certificate {leaf.subject.rfc4514_string()} is issued by untrusted root {akid.hex()}"
        )
    if expected_owner is not None and root.owner != expected_owner:
        raise SignatureError(
            f"root {akid.hex()} belongs to {root.owner!r}, expected {expected_owner!r}"
        )
    if not _is_ca(root.certificate):
        raise SignatureError(f"root {akid.hex()} is not a CA certificate")
    try:
        leaf.verify_directly_issued_by(root.certificate)
    except ValueError as exc:
        raise SignatureError(
            f"certificate {leaf.subject.rfc4514_string()} is not issued by root {akid.hex()}: {exc}"
        ) from exc
    except InvalidSignature:
        raise SignatureError(
            f"issuer signature on certificate {leaf.subject.rfc4514_string()} does not verify"
        ) from None
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(f"cannot check the issuer signature: {exc}") from exc
    _check_validity(root.certificate, now, "root")
    _check_validity(leaf, now, "leaf")
    return root


def verify_trusted(
    certificate: x509.Certificate,
    data: bytes,
    signature: bytes,
    algorithm_oid: str = "",
    *,
    trust_store: TrustStore,
    now: datetime,
    expected_root_skid: bytes | None = None,
    expected_owner: str | None = None,
) -> TrustedRoot:
    """Chain `certificate` to a trusted root, then check its signature over `data`; return the root."""
    root = verify_certificate_path(
        certificate,
        trust_store,
        now=now,
        expected_root_skid=expected_root_skid,
        expected_owner=expected_owner,
    )
    verify(certificate, data, signature, algorithm_oid)
    return root
