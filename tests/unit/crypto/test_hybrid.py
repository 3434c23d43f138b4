"""Tink hybrid encryption: ECIES P-256 and HPKE X25519 binary keysets, empty context info."""

from __future__ import annotations

import farmhash
import pytest
import tink
from hypothesis import given, settings
from hypothesis import strategies as st
from tink import hybrid
from tink.proto import tink_pb2

from cmms.crypto.errors import DecryptionError, InvalidKeyError
from cmms.crypto.hybrid import (
    ECIES_P256,
    HPKE_X25519,
    HybridPrivateKey,
    HybridPublicKey,
    HybridScheme,
    encrypt,
    private_key_id,
)

SCHEMES = [ECIES_P256, HPKE_X25519]
TYPE_URLS = {
    ECIES_P256: "type.googleapis.com/google.crypto.tink.EciesAeadHkdfPublicKey",
    HPKE_X25519: "type.googleapis.com/google.crypto.tink.HpkePublicKey",
}


@pytest.fixture(scope="module", params=SCHEMES, ids=lambda s: s.name)
def private_key(request: pytest.FixtureRequest) -> HybridPrivateKey:
    scheme: HybridScheme = request.param
    return HybridPrivateKey.generate(scheme)


def test_round_trip_through_serialized_public_keyset(private_key: HybridPrivateKey) -> None:
    public_keyset = private_key.public_key().keyset()
    ciphertext = encrypt(public_keyset, b"serialized SignedMessage")
    assert private_key.decrypt(ciphertext) == b"serialized SignedMessage"


def test_empty_plaintext_round_trips(private_key: HybridPrivateKey) -> None:
    assert private_key.decrypt(private_key.public_key().encrypt(b"")) == b""


def test_ciphertext_starts_with_tink_prefix_and_key_id(private_key: HybridPrivateKey) -> None:
    ciphertext = private_key.public_key().encrypt(b"x")
    assert ciphertext[0] == 0x01
    assert int.from_bytes(ciphertext[1:5], "big") == private_key.primary_key_id
    assert private_key.public_key().primary_key_id == private_key.primary_key_id


def test_encryption_is_randomised(private_key: HybridPrivateKey) -> None:
    public = private_key.public_key()
    assert public.encrypt(b"same") != public.encrypt(b"same")


def test_public_keyset_has_no_secret_and_the_expected_key_type(
    private_key: HybridPrivateKey,
) -> None:
    public_keyset = private_key.public_key().keyset()
    keyset = tink_pb2.Keyset.FromString(public_keyset)
    assert len(keyset.key) == 1
    assert keyset.key[0].key_data.key_material_type == tink_pb2.KeyData.ASYMMETRIC_PUBLIC
    assert keyset.key[0].output_prefix_type == tink_pb2.TINK
    assert keyset.key[0].key_data.type_url in TYPE_URLS.values()


def test_scheme_selects_the_key_type() -> None:
    for scheme, type_url in TYPE_URLS.items():
        keyset = HybridPrivateKey.generate(scheme).public_key().keyset()
        assert tink_pb2.Keyset.FromString(keyset).key[0].key_data.type_url == type_url


def test_wrong_key_raises_decryption_error(private_key: HybridPrivateKey) -> None:
    other = HybridPrivateKey.generate(HPKE_X25519)
    with pytest.raises(DecryptionError, match="hybrid decryption failed"):
        other.decrypt(private_key.public_key().encrypt(b"secret"))


def test_tampered_ciphertext_raises_decryption_error(private_key: HybridPrivateKey) -> None:
    ciphertext = bytearray(private_key.public_key().encrypt(b"secret"))
    ciphertext[-1] ^= 0x80
    with pytest.raises(DecryptionError):
        private_key.decrypt(bytes(ciphertext))


def test_truncated_ciphertext_raises_decryption_error(private_key: HybridPrivateKey) -> None:
    with pytest.raises(DecryptionError):
        private_key.decrypt(private_key.public_key().encrypt(b"secret")[:4])


def test_ciphertext_with_nonempty_context_info_does_not_decrypt(
    private_key: HybridPrivateKey,
) -> None:
    # Our decrypt uses empty context info; anything else must fail to authenticate.
    raw_public = tink.proto_keyset_format.parse_without_secret(private_key.public_key().keyset())
    ciphertext = raw_public.primitive(hybrid.HybridEncrypt).encrypt(b"m", b"context")
    with pytest.raises(DecryptionError):
        private_key.decrypt(ciphertext)


def test_decrypts_a_ciphertext_made_directly_with_tink_and_empty_context(
    private_key: HybridPrivateKey,
) -> None:
    raw_public = tink.proto_keyset_format.parse_without_secret(private_key.public_key().keyset())
    ciphertext = raw_public.primitive(hybrid.HybridEncrypt).encrypt(b"interop", b"")
    assert private_key.decrypt(ciphertext) == b"interop"


def test_cleartext_private_keyset_round_trips(private_key: HybridPrivateKey) -> None:
    restored = HybridPrivateKey.from_cleartext_keyset(private_key.cleartext_keyset())
    assert restored.primary_key_id == private_key.primary_key_id
    assert restored.decrypt(private_key.public_key().encrypt(b"m")) == b"m"
    assert restored.public_key() == private_key.public_key()


def test_private_keyset_is_not_accepted_as_public_keyset(private_key: HybridPrivateKey) -> None:
    with pytest.raises(InvalidKeyError):
        HybridPublicKey.from_keyset(private_key.cleartext_keyset())


def test_public_keyset_is_not_accepted_as_private_keyset(private_key: HybridPrivateKey) -> None:
    with pytest.raises(InvalidKeyError):
        HybridPrivateKey.from_cleartext_keyset(private_key.public_key().keyset())


def test_garbage_keysets_raise_invalid_key_error() -> None:
    with pytest.raises(InvalidKeyError):
        HybridPublicKey.from_keyset(b"\xff\xff\xff")
    with pytest.raises(InvalidKeyError):
        HybridPrivateKey.from_cleartext_keyset(b"\xff\xff\xff")
    with pytest.raises(InvalidKeyError):
        encrypt(b"", b"m")


def test_private_key_id_is_signed_farmhash_of_primary_public_key_value(
    private_key: HybridPrivateKey,
) -> None:
    keyset = tink_pb2.Keyset.FromString(private_key.public_key().keyset())
    unsigned = farmhash.fingerprint64(keyset.key[0].key_data.value)
    key_id = private_key_id(private_key.public_key())
    assert -(2**63) <= key_id < 2**63
    assert key_id % 2**64 == unsigned


def test_private_key_ids_differ_between_keys() -> None:
    a = HybridPrivateKey.generate(HPKE_X25519).public_key()
    b = HybridPrivateKey.generate(HPKE_X25519).public_key()
    assert private_key_id(a) != private_key_id(b)
    assert private_key_id(a) == private_key_id(HybridPublicKey.from_keyset(a.keyset()))


def test_farmhash_is_fingerprint64_of_the_farmhash_na_family() -> None:
    # Fingerprint64 of the empty string is FarmHash's constant k2, as in Guava's farmHashFingerprint64.
    assert farmhash.fingerprint64(b"") == 0x9AE16A3B2F90404F


_HPKE_KEY = HybridPrivateKey.generate(HPKE_X25519)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=2048))
def test_any_plaintext_round_trips(plaintext: bytes) -> None:
    ciphertext = _HPKE_KEY.public_key().encrypt(plaintext)
    assert _HPKE_KEY.decrypt(ciphertext) == plaintext
