"""The in-memory fake KMS serves named KEKs and plugs into the registry and the envelope."""

from __future__ import annotations

import pytest

from cmms.common.kms import KmsError, KmsRegistry, LocalFileKmsClient
from cmms.crypto.envelope import new_envelope, open_envelope
from cmms.crypto.errors import DecryptionError
from cmms.crypto.keystore import KmsClient, generate_kek_keyset
from cmms.testing.fake_kms import FakeKms


def test_envelope_round_trip_through_a_fake_kek() -> None:
    kms = FakeKms()
    uri = kms.create_key("edp1-kek")
    assert uri == "fake-kms://edp1-kek"
    dek, encrypted_dek = new_envelope(kms, uri)
    chunks = list(dek.encrypt_chunks([b"a" * 5000, b"b" * 70000]))
    opened = open_envelope(kms, uri, encrypted_dek)
    assert b"".join(opened.decrypt_chunks(chunks)) == b"a" * 5000 + b"b" * 70000


def test_dek_sealed_under_one_kek_does_not_open_under_another() -> None:
    kms = FakeKms()
    first, second = kms.create_key("one"), kms.create_key("two")
    _, encrypted_dek = new_envelope(kms, first)
    with pytest.raises(DecryptionError):
        open_envelope(kms, second, encrypted_dek)


def test_a_given_keyset_serves_the_same_kek() -> None:
    keyset = generate_kek_keyset()
    a, b = FakeKms(), FakeKms()
    _, encrypted_dek = new_envelope(a, a.add_key("kek", keyset))
    open_envelope(b, b.add_key("kek", keyset), encrypted_dek)


def test_unknown_and_duplicate_names_are_refused() -> None:
    kms = FakeKms()
    kms.create_key("kek")
    with pytest.raises(KmsError, match="already exists"):
        kms.create_key("kek")
    with pytest.raises(KmsError, match="no key"):
        kms.get_aead("fake-kms://other")
    with pytest.raises(KmsError, match="non-empty"):
        kms.create_key("a/b")


def test_fake_kms_plugs_into_the_registry() -> None:
    kms = FakeKms()
    uri = kms.create_key("kek")
    registry = KmsRegistry([LocalFileKmsClient(), kms])
    assert isinstance(kms, KmsClient)
    assert registry.supports(uri)
    assert registry.get_aead(uri) is kms.get_aead(uri)
