from __future__ import annotations

import pytest

from cmms.crypto.errors import DecryptionError
from cmms.crypto.hybrid import HPKE_X25519, HybridPrivateKey, private_key_id, register_tink_hybrid
from cmms.crypto.keystore import aead_from_cleartext_keyset, generate_kek_keyset
from cmms.duchy.private_keys import PrivateKeyNotFoundError, PrivateKeyStore
from cmms.storage import open_blob_store


def fresh_key() -> HybridPrivateKey:
    register_tink_hybrid()
    return HybridPrivateKey.generate(HPKE_X25519)


async def test_stored_keys_are_sealed_and_load_back_by_id() -> None:
    blobs = open_blob_store("memory://")
    store = PrivateKeyStore(blobs, aead_from_cleartext_keyset(generate_kek_keyset()))
    key = fresh_key()
    key_id = await store.store(key)
    assert key_id == str(private_key_id(key.public_key()))
    sealed = await blobs.read_bytes(f"tink-private-key/{key_id}")
    assert key.cleartext_keyset() not in sealed
    assert (await store.load(key_id)).public_key() == key.public_key()


async def test_another_kek_cannot_open_a_key_and_unknown_ids_are_reported() -> None:
    blobs = open_blob_store("memory://")
    key_id = await PrivateKeyStore(blobs, aead_from_cleartext_keyset(generate_kek_keyset())).store(
        fresh_key()
    )
    other = PrivateKeyStore(blobs, aead_from_cleartext_keyset(generate_kek_keyset()))
    with pytest.raises(DecryptionError):
        await other.load(key_id)
    with pytest.raises(PrivateKeyNotFoundError):
        await other.load("42")
