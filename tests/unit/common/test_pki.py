"""The development PKI: files, chains and the trust config agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmms.common import x509 as x509_utils
from cmms.common.errors import UserError
from cmms.common.identity import Principal, PrincipalKind
from cmms.common.pki import PkiLayout, PkiSpec, generate_pki
from cmms.crypto.hybrid import HybridPrivateKey, HybridPublicKey


def test_every_party_has_a_root_and_two_leaves_chaining_to_it(dev_pki: PkiLayout) -> None:
    trust = dev_pki.load_trust_config()
    assert trust.principals == set(PkiSpec().principals())
    bundle = x509_utils.load_pem_certificates(dev_pki.all_root_certs.read_bytes())
    assert len(bundle) == len(trust.principals)
    for principal in trust.principals:
        files = dev_pki.party(principal)
        root = x509_utils.load_pem_certificate(files.root_cert.read_bytes())
        tls = x509_utils.load_pem_certificate(files.tls_cert.read_bytes())
        cs = x509_utils.load_der_certificate(files.cs_cert.read_bytes())
        assert root in bundle
        for leaf in (tls, cs):
            leaf.verify_directly_issued_by(root)
            akid = x509_utils.authority_key_identifier(leaf)
            assert akid is not None
            assert trust.principal_for_akid(akid) == principal
        assert tls.serial_number != cs.serial_number
        tls_key = x509_utils.load_ec_private_key(files.tls_key.read_bytes())
        cs_key = x509_utils.load_ec_private_key(files.cs_key.read_bytes())
        assert tls_key.public_key() == tls.public_key()
        assert cs_key.public_key() == cs.public_key()
        assert files.cs_key.stat().st_mode & 0o077 == 0


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    spec = PkiSpec(duchies=("d1",), data_providers=(), measurement_consumers=())
    layout = generate_pki(tmp_path, spec)
    before = layout.party(Principal.duchy("d1")).root_cert.read_bytes()
    with pytest.raises(UserError, match="--force"):
        generate_pki(tmp_path, spec)
    assert layout.party(Principal.duchy("d1")).root_cert.read_bytes() == before
    generate_pki(tmp_path, spec, force=True)
    assert layout.party(Principal.duchy("d1")).root_cert.read_bytes() != before


@pytest.mark.parametrize(
    "spec",
    [
        PkiSpec(duchies=("a", "a")),
        PkiSpec(duchies=("x",), data_providers=("x",)),
        PkiSpec(duchies=("kingdom",)),
        PkiSpec(duchies=("Bad",)),
    ],
)
def test_bad_party_ids_fail_before_writing(spec: PkiSpec, tmp_path: Path) -> None:
    with pytest.raises(UserError):
        generate_pki(tmp_path / "out", spec)
    assert not (tmp_path / "out").exists()


def test_consumers_and_providers_get_a_matching_encryption_key_pair(dev_pki: PkiLayout) -> None:
    for principal in dev_pki.load_trust_config().principals:
        files = dev_pki.encryption_keys(principal)
        if principal.kind in (PrincipalKind.MEASUREMENT_CONSUMER, PrincipalKind.DATA_PROVIDER):
            private = HybridPrivateKey.from_cleartext_keyset(files.private_keyset.read_bytes())
            public = HybridPublicKey.from_keyset(files.public_keyset.read_bytes())
            assert private.decrypt(public.encrypt(b"spec")) == b"spec"
            assert files.private_keyset.stat().st_mode & 0o077 == 0
        else:
            assert not files.private_keyset.exists()
            assert not files.public_keyset.exists()
