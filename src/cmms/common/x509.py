"""X.509 helpers: EC P-256 keys, root and leaf certificates, key identifiers, PEM/DER codecs."""

from __future__ import annotations

import datetime
import enum
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cmms.crypto import signing
from cmms.crypto.errors import SignatureError

# One implementation of these lives in the pure core; re-exported here for the I/O-side callers.
certificate_der = signing.certificate_der
private_key_der = signing.private_key_der
subject_key_identifier = signing.subject_key_identifier

ORGANIZATION = "halo-cmms development"
TEN_YEARS = datetime.timedelta(days=3650)
# Certificates start slightly in the past so a peer whose clock lags a little still accepts them.
_BACKDATE = datetime.timedelta(hours=1)


class LeafPurpose(enum.Enum):
    """What a leaf certificate is for; decides its key usage and extended key usage."""

    TLS = "tls"
    CONSENT_SIGNALING = "consent_signaling"


def generate_ec_key() -> ec.EllipticCurvePrivateKey:
    """A fresh NIST P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def build_root_certificate(
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    now: datetime.datetime,
    lifetime: datetime.timedelta = TEN_YEARS,
) -> x509.Certificate:
    """A self-signed CA certificate (CA:TRUE, path length 0, SKI and self AKI), ECDSA-SHA256."""
    public_key = key.public_key()
    name = _name(common_name)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def build_leaf_certificate(
    public_key: ec.EllipticCurvePublicKey,
    common_name: str,
    *,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    purpose: LeafPurpose,
    now: datetime.datetime,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    lifetime: datetime.timedelta = TEN_YEARS,
) -> x509.Certificate:
    """An end-entity certificate issued directly by `issuer`, its AKI equal to the issuer's SKI."""
    not_after = min(now + lifetime, issuer.not_valid_after_utc)
    is_tls = purpose is LeafPurpose.TLS
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=not is_tls,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            ),
            critical=False,
        )
    )
    if is_tls:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def authority_key_identifier(certificate: x509.Certificate) -> bytes | None:
    """The key identifier in the certificate's Authority Key Identifier, if present."""
    try:
        return signing.authority_key_identifier(certificate)
    except SignatureError:
        return None


def load_pem_certificate(data: bytes) -> x509.Certificate:
    """Parse one PEM certificate."""
    return x509.load_pem_x509_certificate(data)


def load_pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Parse a PEM bundle of certificates."""
    return x509.load_pem_x509_certificates(data)


def load_der_certificate(data: bytes) -> x509.Certificate:
    """Parse one DER certificate."""
    return x509.load_der_x509_certificate(data)


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """PEM encoding of a certificate."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM encoding of a private key."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_ec_private_key(data: bytes) -> ec.EllipticCurvePrivateKey:
    """Parse an unencrypted EC private key, PEM or DER; raises `ValueError` for other key types."""
    if data.lstrip().startswith(b"-----"):
        key = serialization.load_pem_private_key(data, password=None)
    else:
        key = serialization.load_der_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"expected an EC private key, got {type(key).__name__}")
    return key
