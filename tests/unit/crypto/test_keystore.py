"""Private keysets wrapped by a KEK in Tink's encrypted-keyset format."""

from __future__ import annotations

import pytest
import tink
from tink import aead, secret_key_access
from tink.proto import tink_pb2

from cmms.crypto.errors import DecryptionError, InvalidKeyError
from cmms.crypto.hybrid import (
    ECIES_P256,
    HPKE_X25519,
    HybridPrivateKey,
    HybridScheme,
    private_key_id,
)
from cmms.crypto.keystore import (
    Aead,
    KmsClient,
    aead_from_cleartext_keyset,
    generate_kek_keyset,
    private_key_blob_key,
    unwrap_private_key,
    wrap_private_key,
)


@pytest.fixture(scope="module")
def kek() -> Aead:
    return aead_from_cleartext_keyset(generate_kek_keyset())


def _secret_key_values(private_key: HybridPrivateKey) -> list[bytes]:
    keyset = tink_pb2.Keyset.FromString(private_key.cleartext_keyset())
    return [bytes(key.key_data.value) for key in keyset.key]


@pytest.mark.parametrize("scheme", [ECIES_P256, HPKE_X25519], ids=lambda s: s.name)
def test_wrap_unwrap_round_trip(kek: Aead, scheme: HybridScheme) -> None:
    private_key = HybridPrivateKey.generate(scheme)
    restored = unwrap_private_key(wrap_private_key(private_key, kek), kek)
    assert restored.primary_key_id == private_key.primary_key_id
    assert restored.decrypt(private_key.public_key().encrypt(b"seed")) == b"seed"


def test_wrapped_bytes_do_not_contain_private_key_material(kek: Aead) -> None:
    private_key = HybridPrivateKey.generate(HPKE_X25519)
    wrapped = wrap_private_key(private_key, kek)
    for value in _secret_key_values(private_key):
        assert value not in wrapped
        # The serialized private key proto embeds the 32-byte X25519 secret; check a window of it.
        assert value[-32:] not in wrapped


def test_wrapped_bytes_are_a_tink_encrypted_keyset(kek: Aead) -> None:
    private_key = HybridPrivateKey.generate(ECIES_P256)
    encrypted = tink_pb2.EncryptedKeyset.FromString(wrap_private_key(private_key, kek))
    sealed = tink_pb2.Keyset.FromString(kek.decrypt(encrypted.encrypted_keyset, b""))
    assert sealed.primary_key_id == private_key.primary_key_id


def test_wrapped_keyset_opens_with_plain_tink_and_empty_associated_data(kek: Aead) -> None:
    private_key = HybridPrivateKey.generate(HPKE_X25519)
    handle = tink.proto_keyset_format.parse_encrypted(wrap_private_key(private_key, kek), kek, b"")
    assert handle.keyset_info().primary_key_id == private_key.primary_key_id


def test_wrong_kek_raises_decryption_error(kek: Aead) -> None:
    other = aead_from_cleartext_keyset(generate_kek_keyset())
    wrapped = wrap_private_key(HybridPrivateKey.generate(HPKE_X25519), kek)
    with pytest.raises(DecryptionError, match="cannot unwrap"):
        unwrap_private_key(wrapped, other)


def test_corrupted_wrapped_keyset_raises_decryption_error(kek: Aead) -> None:
    wrapped = bytearray(wrap_private_key(HybridPrivateKey.generate(HPKE_X25519), kek))
    wrapped[20] ^= 0x01
    with pytest.raises(DecryptionError):
        unwrap_private_key(bytes(wrapped), kek)


def test_unwrapping_a_non_hybrid_keyset_is_an_invalid_key(kek: Aead) -> None:
    aead_handle = tink.new_keyset_handle(aead.aead_key_templates.AES128_GCM)
    wrapped = tink.proto_keyset_format.serialize_encrypted(aead_handle, kek, b"")
    with pytest.raises(InvalidKeyError):
        unwrap_private_key(wrapped, kek)


def test_kek_keyset_is_a_single_aes256_gcm_key() -> None:
    keyset = tink_pb2.Keyset.FromString(generate_kek_keyset())
    assert len(keyset.key) == 1
    assert keyset.key[0].key_data.type_url.endswith("AesGcmKey")


def test_kek_from_plain_tink_aead_keyset() -> None:
    handle = tink.new_keyset_handle(aead.aead_key_templates.AES128_GCM)
    kek = aead_from_cleartext_keyset(
        tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
    )
    assert kek.decrypt(kek.encrypt(b"m", b""), b"") == b"m"


def test_non_aead_keyset_is_not_a_kek() -> None:
    with pytest.raises(InvalidKeyError):
        aead_from_cleartext_keyset(HybridPrivateKey.generate(HPKE_X25519).cleartext_keyset())
    with pytest.raises(InvalidKeyError):
        aead_from_cleartext_keyset(b"junk")


def test_blob_key_uses_the_signed_decimal_key_id() -> None:
    public = HybridPrivateKey.generate(HPKE_X25519).public_key()
    key = private_key_blob_key(private_key_id(public))
    assert key == f"tink-private-key/{private_key_id(public)}"
    assert private_key_blob_key(-5) == "tink-private-key/-5"


def test_protocols_accept_duck_typed_implementations(kek: Aead) -> None:
    class OneKeyKms:
        def supports(self, key_uri: str) -> bool:
            return key_uri == "test://kek"

        def get_aead(self, key_uri: str) -> Aead:
            return kek

    assert isinstance(kek, Aead)
    assert isinstance(OneKeyKms(), KmsClient)
