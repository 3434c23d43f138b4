"""This duchy's per-computation private keys at rest (hmss spec §A.2).

A keyset is sealed under the duchy's key-encryption key and written to blob storage at
`tink-private-key/<key id>`, the key id being the signed FarmHash fingerprint of its public key.
Computation details record only the id; the HMSS mill loads the key back with it.
"""

from __future__ import annotations

from cmms.crypto.errors import DecryptionError
from cmms.crypto.hybrid import HybridPrivateKey, private_key_id
from cmms.crypto.keystore import (
    Aead,
    private_key_blob_key,
    unwrap_private_key,
    wrap_private_key,
)
from cmms.storage import BlobNotFoundError, BlobStore


class PrivateKeyNotFoundError(KeyError):
    """No key is stored under the id."""


class PrivateKeyStore:
    def __init__(self, blobs: BlobStore, kek: Aead) -> None:
        self._blobs = blobs
        self._kek = kek

    async def store(self, private_key: HybridPrivateKey) -> str:
        """Seal and write `private_key`; return its id (a signed decimal string)."""
        key_id = private_key_id(private_key.public_key())
        await self._blobs.write_bytes(
            private_key_blob_key(key_id), wrap_private_key(private_key, self._kek)
        )
        return str(key_id)

    async def load(self, key_id: str) -> HybridPrivateKey:
        """The key stored under `key_id`; `DecryptionError` if the KEK does not open it."""
        try:
            wrapped = await self._blobs.read_bytes(private_key_blob_key(int(key_id)))
        except BlobNotFoundError as error:
            raise PrivateKeyNotFoundError(key_id) from error
        return unwrap_private_key(wrapped, self._kek)


__all__ = ["DecryptionError", "PrivateKeyNotFoundError", "PrivateKeyStore"]
