"""Signatures over exact bytes and one-level certificate paths to a root found by AKID."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from cmms.crypto.errors import SignatureError
from cmms.crypto.signing import (
    ECDSA_WITH_SHA256_OID,
    ECDSA_WITH_SHA384_OID,
    RSA_WITH_SHA256_OID,
    TrustedRoot,
    TrustStore,
    authority_key_identifier,
    certificate_der,
    default_signature_algorithm_oid,
    load_certificate,
    load_certificates_pem,
    load_private_key,
    private_key_der,
    sign,
    subject_key_identifier,
    verify,
    verify_certificate_path,
    verify_trusted,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ROOT_VALIDITY = (datetime(2022, 7, 1, tzinfo=UTC), datetime(2032, 7, 1, tzinfo=UTC))


@dataclass(frozen=True)
class Party:
    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_root(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    validity: tuple[datetime, datetime] = ROOT_VALIDITY,
    ca: bool = True,
) -> x509.Certificate:
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} root"))
        .issuer_name(_name(f"{name} root"))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def make_leaf(
    name: str,
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    *,
    validity: tuple[datetime, datetime] = ROOT_VALIDITY,
) -> x509.Certificate:
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(f"{name} consent signaling"))
        .issuer_name(root.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )


def make_party(name: str) -> Party:
    root_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root = make_root(name, root_key)
    return Party(root, root_key, make_leaf(name, root, root_key, leaf_key), leaf_key)


@pytest.fixture(scope="module")
def mc() -> Party:
    return make_party("mc")


@pytest.fixture(scope="module")
def edp() -> Party:
    return make_party("edp")


# --- signatures ----------------------------------------------------------------------------------


def test_sign_verify_round_trip(mc: Party) -> None:
    data = b"\x0a\x03spec bytes exactly as serialized"
    signature = sign(mc.leaf_key, data)
    verify(mc.leaf, data, signature, ECDSA_WITH_SHA256_OID)


def test_signature_is_der_ecdsa_that_cryptography_accepts(mc: Party) -> None:
    data = b"payload"
    signature = sign(mc.leaf_key, data)
    assert signature[0] == 0x30  # DER SEQUENCE
    mc.leaf_key.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))


def test_empty_oid_uses_the_certificate_signature_algorithm(mc: Party) -> None:
    signature = sign(mc.leaf_key, b"data")
    verify(mc.leaf, b"data", signature, "")


def test_default_oid_for_ec_and_rsa_keys(mc: Party) -> None:
    assert default_signature_algorithm_oid(mc.leaf_key) == ECDSA_WITH_SHA256_OID
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert default_signature_algorithm_oid(rsa_key) == RSA_WITH_SHA256_OID


def test_other_ecdsa_hash_round_trips_and_is_bound_to_its_oid(mc: Party) -> None:
    signature = sign(mc.leaf_key, b"data", ECDSA_WITH_SHA384_OID)
    verify(mc.leaf, b"data", signature, ECDSA_WITH_SHA384_OID)
    with pytest.raises(SignatureError):
        verify(mc.leaf, b"data", signature, ECDSA_WITH_SHA256_OID)


def test_tampered_data_is_rejected(mc: Party) -> None:
    signature = sign(mc.leaf_key, b"original")
    with pytest.raises(SignatureError, match="does not verify"):
        verify(mc.leaf, b"originaL", signature)


def test_tampered_signature_is_rejected(mc: Party) -> None:
    signature = bytearray(sign(mc.leaf_key, b"data"))
    signature[-1] ^= 0x01
    with pytest.raises(SignatureError):
        verify(mc.leaf, b"data", bytes(signature))


def test_garbage_signature_is_rejected(mc: Party) -> None:
    with pytest.raises(SignatureError):
        verify(mc.leaf, b"data", b"\x00\x01\x02")


def test_signature_from_another_key_is_rejected(mc: Party, edp: Party) -> None:
    with pytest.raises(SignatureError):
        verify(mc.leaf, b"data", sign(edp.leaf_key, b"data"))


def test_unknown_oid_is_rejected(mc: Party) -> None:
    with pytest.raises(SignatureError, match="unsupported signature algorithm"):
        sign(mc.leaf_key, b"data", "1.2.3.4")
    with pytest.raises(SignatureError, match="unsupported signature algorithm"):
        verify(mc.leaf, b"data", sign(mc.leaf_key, b"data"), "1.2.3.4")


def test_rsa_oid_with_ec_key_is_rejected(mc: Party) -> None:
    with pytest.raises(SignatureError, match="cannot be used"):
        sign(mc.leaf_key, b"data", RSA_WITH_SHA256_OID)
    with pytest.raises(SignatureError, match="does not match"):
        verify(mc.leaf, b"data", sign(mc.leaf_key, b"data"), RSA_WITH_SHA256_OID)


# --- loading -------------------------------------------------------------------------------------


def test_certificates_load_from_der_and_pem(mc: Party) -> None:
    der = certificate_der(mc.leaf)
    pem = mc.leaf.public_bytes(serialization.Encoding.PEM)
    assert load_certificate(der) == mc.leaf
    assert load_certificate(pem) == mc.leaf


def test_pem_bundle_loads_every_certificate(mc: Party, edp: Party) -> None:
    bundle = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (mc.root, edp.root))
    assert load_certificates_pem(bundle) == [mc.root, edp.root]
    assert len(TrustStore.from_pem_bundle(bundle)) == 2


def test_bad_certificate_bytes_raise_signature_error() -> None:
    with pytest.raises(SignatureError, match=r"not a valid X\.509"):
        load_certificate(b"\x30\x03\x02\x01\x00")


def test_private_key_round_trips_through_pkcs8_der(mc: Party) -> None:
    loaded = load_private_key(private_key_der(mc.leaf_key))
    verify(mc.leaf, b"x", sign(loaded, b"x"))


def test_private_key_loads_from_pem(mc: Party) -> None:
    pem = mc.leaf_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert isinstance(load_private_key(pem), ec.EllipticCurvePrivateKey)


def test_bad_private_key_bytes_raise_signature_error() -> None:
    with pytest.raises(SignatureError, match="PKCS#8"):
        load_private_key(b"not a key")


# --- certificate path ----------------------------------------------------------------------------


def test_leaf_chains_to_its_root_found_by_akid(mc: Party, edp: Party) -> None:
    store = TrustStore([mc.root, edp.root])
    root = verify_certificate_path(mc.leaf, store, now=NOW)
    assert root.certificate == mc.root
    assert authority_key_identifier(mc.leaf) == subject_key_identifier(mc.root)


def test_unknown_root_is_rejected(mc: Party, edp: Party) -> None:
    store = TrustStore([edp.root])
    with pytest.raises(SignatureError, match="untrusted root"):
        verify_certificate_path(mc.leaf, store, now=NOW)


def test_root_binding_by_owner(mc: Party, edp: Party) -> None:
    store = TrustStore([TrustedRoot(mc.root, "measurementConsumers/mc"), edp.root])
    verify_certificate_path(mc.leaf, store, now=NOW, expected_owner="measurementConsumers/mc")
    with pytest.raises(SignatureError, match="expected 'dataProviders/edp'"):
        verify_certificate_path(mc.leaf, store, now=NOW, expected_owner="dataProviders/edp")


def test_root_binding_by_skid(mc: Party, edp: Party) -> None:
    store = TrustStore([mc.root, edp.root])
    verify_certificate_path(
        mc.leaf, store, now=NOW, expected_root_skid=subject_key_identifier(mc.root)
    )
    with pytest.raises(SignatureError, match="expected root"):
        verify_certificate_path(
            mc.leaf, store, now=NOW, expected_root_skid=subject_key_identifier(edp.root)
        )


def test_leaf_signed_by_an_impostor_key_with_the_same_akid_is_rejected(mc: Party) -> None:
    # An attacker copies the root's name and SKID but signs with their own key.
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    forged = (
        x509.CertificateBuilder()
        .subject_name(mc.leaf.subject)
        .issuer_name(mc.root.subject)
        .public_key(impostor_key.public_key())
        .serial_number(1)
        .not_valid_before(ROOT_VALIDITY[0])
        .not_valid_after(ROOT_VALIDITY[1])
        .add_extension(
            x509.AuthorityKeyIdentifier(subject_key_identifier(mc.root), None, None),
            critical=False,
        )
        .sign(impostor_key, hashes.SHA256())
    )
    with pytest.raises(SignatureError, match=r"issuer signature .* does not verify"):
        verify_certificate_path(forged, TrustStore([mc.root]), now=NOW)


def test_tampered_certificate_bytes_are_rejected(mc: Party) -> None:
    der = certificate_der(mc.leaf)
    assert der.count(b"consent") == 1  # only in the leaf's subject name
    tampered = load_certificate(der.replace(b"consent", b"cOnsent"))
    with pytest.raises(SignatureError, match=r"issuer signature .* does not verify"):
        verify_certificate_path(tampered, TrustStore([mc.root]), now=NOW)


def test_expired_leaf_is_rejected(mc: Party) -> None:
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = make_leaf(
        "mc",
        mc.root,
        mc.root_key,
        leaf_key,
        validity=(datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC)),
    )
    store = TrustStore([mc.root])
    verify_certificate_path(leaf, store, now=datetime(2023, 6, 1, tzinfo=UTC))
    with pytest.raises(SignatureError, match=r"leaf certificate .* expired"):
        verify_certificate_path(leaf, store, now=NOW)
    with pytest.raises(SignatureError, match="not valid before"):
        verify_certificate_path(leaf, store, now=datetime(2022, 12, 31, tzinfo=UTC))


def test_expired_root_is_rejected() -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    short = (datetime(2023, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC))
    root = make_root("old", root_key, validity=short)
    leaf = make_leaf("old", root, root_key, leaf_key)
    with pytest.raises(SignatureError, match=r"root certificate .* expired"):
        verify_certificate_path(leaf, TrustStore([root]), now=NOW)


def test_validity_is_checked_in_utc_for_any_timezone(mc: Party) -> None:
    just_after_expiry = ROOT_VALIDITY[1] + timedelta(seconds=1)
    local = just_after_expiry.astimezone(datetime.now(UTC).astimezone().tzinfo or UTC)
    with pytest.raises(SignatureError, match="expired"):
        verify_certificate_path(mc.leaf, TrustStore([mc.root]), now=local)


def test_naive_now_is_refused(mc: Party) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_certificate_path(mc.leaf, TrustStore([mc.root]), now=datetime(2026, 1, 1))


def test_non_ca_root_is_refused_by_the_store() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SignatureError, match="not a CA"):
        TrustStore([make_root("x", key, ca=False)])


def test_leaf_without_akid_is_rejected(mc: Party) -> None:
    with pytest.raises(SignatureError, match="no authority key identifier"):
        authority_key_identifier(
            x509.CertificateBuilder()
            .subject_name(_name("bare"))
            .issuer_name(_name("bare"))
            .public_key(mc.leaf_key.public_key())
            .serial_number(1)
            .not_valid_before(ROOT_VALIDITY[0])
            .not_valid_after(ROOT_VALIDITY[1])
            .sign(mc.leaf_key, hashes.SHA256())
        )


def test_a_leaf_cannot_act_as_issuer_even_if_placed_in_the_store(mc: Party) -> None:
    # A leaf (CA:FALSE) is refused as a trust anchor, so it can never certify another leaf.
    with pytest.raises(SignatureError, match="not a CA"):
        TrustStore([mc.leaf])


def test_verify_trusted_checks_path_then_signature(mc: Party, edp: Party) -> None:
    store = TrustStore([TrustedRoot(mc.root, "mc"), TrustedRoot(edp.root, "edp")])
    signature = sign(mc.leaf_key, b"spec")
    root = verify_trusted(mc.leaf, b"spec", signature, trust_store=store, now=NOW)
    assert root.owner == "mc"
    with pytest.raises(SignatureError, match="does not verify"):
        verify_trusted(mc.leaf, b"spec!", signature, trust_store=store, now=NOW)
    with pytest.raises(SignatureError, match="untrusted root"):
        verify_trusted(mc.leaf, b"spec", signature, trust_store=TrustStore([edp.root]), now=NOW)
    with pytest.raises(SignatureError, match="expected 'edp'"):
        verify_trusted(
            mc.leaf, b"spec", signature, trust_store=store, now=NOW, expected_owner="edp"
        )
