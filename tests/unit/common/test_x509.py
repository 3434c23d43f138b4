"""Root and leaf certificates carry the extensions the trust model relies on."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from cmms.common import x509 as x509_utils

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def root() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = x509_utils.generate_ec_key()
    return x509_utils.build_root_certificate(key, "test root", now=NOW), key


def test_root_is_a_self_signed_p256_ca(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    certificate, _ = root
    assert certificate.issuer == certificate.subject
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert x509_utils.authority_key_identifier(certificate) == x509_utils.subject_key_identifier(
        certificate
    )
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert public_key.curve.name == "secp256r1"
    assert certificate.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.2"
    certificate.verify_directly_issued_by(certificate)
    assert certificate.not_valid_after_utc - NOW >= datetime.timedelta(days=3600)


def test_tls_leaf_is_issued_by_the_root_for_loopback_and_both_directions(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    root_cert, root_key = root
    leaf = x509_utils.build_leaf_certificate(
        x509_utils.generate_ec_key().public_key(),
        "leaf",
        issuer=root_cert,
        issuer_key=root_key,
        purpose=x509_utils.LeafPurpose.TLS,
        now=NOW,
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
    )
    leaf.verify_directly_issued_by(root_cert)
    assert x509_utils.authority_key_identifier(leaf) == x509_utils.subject_key_identifier(root_cert)
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usages = set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert leaf.not_valid_after_utc <= root_cert.not_valid_after_utc


def test_consent_signaling_leaf_has_no_tls_usage(
    root: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
) -> None:
    root_cert, root_key = root
    leaf = x509_utils.build_leaf_certificate(
        x509_utils.generate_ec_key().public_key(),
        "cs",
        issuer=root_cert,
        issuer_key=root_key,
        purpose=x509_utils.LeafPurpose.CONSENT_SIGNALING,
        now=NOW,
    )
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment
    with pytest.raises(x509.ExtensionNotFound):
        leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_key_codecs_round_trip() -> None:
    key = x509_utils.generate_ec_key()
    for encoded in (x509_utils.private_key_pem(key), x509_utils.private_key_der(key)):
        loaded = x509_utils.load_ec_private_key(encoded)
        assert loaded.private_numbers() == key.private_numbers()


def test_missing_subject_key_identifier_is_an_error() -> None:
    key = x509_utils.generate_ec_key()
    name = x509.Name([])
    bare = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    with pytest.raises(ValueError, match=r"(?i)subject key identifier"):
        x509_utils.subject_key_identifier(bare)
    assert x509_utils.authority_key_identifier(bare) is None
