"""Private keys at rest, wrapped by a key-encryption key (hmss spec §A.2).

A keyset is stored in Tink's binary *encrypted keyset* format: the serialized keyset sealed by a KEK
AEAD with empty associated data (Python Tink writes no `KeysetInfo` beside it). Where the KEK comes from is pluggable through `KmsClient`; the I/O-backed clients live in
`cmms.common.kms`.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol, runtime_checkable

import tink
from google.protobuf.message import DecodeError
from tink import aead, secret_key_access

from cmms.crypto.errors import DecryptionError, InvalidKeyError
from cmms.crypto.hybrid import HybridPrivateKey

KEK_ASSOCIATED_DATA = b""
PRIVATE_KEY_BLOB_PREFIX = "tink-private-key/"


@runtime_checkable
class Aead(Protocol):
    """Authenticated encryption with associated data (Tink's `Aead` interface)."""

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes: ...

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes: ...


@runtime_checkable
class KmsClient(Protocol):
    """A source of KEK AEADs, addressed by key URI (`fake-kms://…`, `gcp-kms://…`, …)."""

    def supports(self, key_uri: str) -> bool:
        """Whether this client can serve `key_uri`."""
        ...

    def get_aead(self, key_uri: str) -> Aead:
        """The AEAD for the KEK at `key_uri`."""
        ...


@functools.cache
def register_tink_aead() -> None:
    """Register Tink's AEAD key managers (once per process)."""
    aead.register()


# --- KEK keysets ---------------------------------------------------------------------------------


def generate_kek_keyset() -> bytes:
    """A fresh cleartext binary AES256-GCM keyset, usable as a local KEK. Secret."""
    register_tink_aead()
    handle = tink.new_keyset_handle(aead.aead_key_templates.AES256_GCM)
    data: bytes = tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
    return data


def aead_from_cleartext_keyset(keyset: bytes) -> Aead:
    """The AEAD of a cleartext binary AEAD keyset (e.g. a `--key-encryption-key-file`)."""
    register_tink_aead()
    try:
        handle = tink.proto_keyset_format.parse(keyset, secret_key_access.TOKEN)
        primitive: Aead = handle.primitive(aead.Aead)
    except (tink.TinkError, DecodeError) as exc:
        raise InvalidKeyError(f"not a Tink AEAD keyset: {exc}") from exc
    return primitive


# --- wrapping keysets ----------------------------------------------------------------------------


def wrap_keyset(keyset_handle: Any, kek: Aead) -> bytes:
    """Seal a Tink `KeysetHandle` under `kek` in the binary encrypted-keyset format."""
    try:
        data: bytes = tink.proto_keyset_format.serialize_encrypted(
            keyset_handle, kek, KEK_ASSOCIATED_DATA
        )
    except tink.TinkError as exc:
        raise InvalidKeyError(f"cannot wrap keyset under the KEK: {exc}") from exc
    return data


def unwrap_keyset(wrapped: bytes, kek: Aead) -> Any:
    """Open an encrypted keyset sealed under `kek`; DecryptionError if it does not authenticate."""
    try:
        return tink.proto_keyset_format.parse_encrypted(wrapped, kek, KEK_ASSOCIATED_DATA)
    except (tink.TinkError, DecodeError) as exc:
        raise DecryptionError(f"cannot unwrap keyset with the KEK: {exc}") from exc


def wrap_private_key(private_key: HybridPrivateKey, kek: Aead) -> bytes:
    """Seal a hybrid private keyset under `kek` for storage."""
    return wrap_keyset(private_key.keyset_handle, kek)


def unwrap_private_key(wrapped: bytes, kek: Aead) -> HybridPrivateKey:
    """Open a hybrid private keyset stored by `wrap_private_key`."""
    return HybridPrivateKey.from_keyset_handle(unwrap_keyset(wrapped, kek))


def private_key_blob_key(key_id: int) -> str:
    """Where a wrapped private keyset is stored: `tink-private-key/<signed decimal key id>`."""
    return f"{PRIVATE_KEY_BLOB_PREFIX}{key_id}"
