"""Tink hybrid encryption with binary keysets (kingdom spec §4.1, hmss spec §A.1-A.2).

Consumers and providers use ECIES P-256 keysets; duchies use a fresh HPKE X25519 keyset per HMSS
computation. Keysets are self-describing: encryption and decryption accept either kind. Context info
is always empty, as in the reference. Ciphertexts carry Tink's output prefix: 0x01 then the 4-byte
big-endian id of the key that made them.

Key generation uses Tink's own CSPRNG; Tink offers no way to inject a `RandomSource`.
"""

from __future__ import annotations

import enum
import functools
from typing import Any

import farmhash
import tink
from google.protobuf.message import DecodeError
from tink import hybrid, secret_key_access
from tink.proto import tink_pb2

from cmms.crypto.errors import DecryptionError, InvalidKeyError

CONTEXT_INFO = b""
TINK_PREFIX_VERSION = 0x01
TINK_PREFIX_LENGTH = 5


class HybridScheme(enum.Enum):
    """The Tink hybrid key templates this system generates."""

    ECIES_P256_HKDF_HMAC_SHA256_AES128_GCM = "ECIES_P256_HKDF_HMAC_SHA256_AES128_GCM"
    DHKEM_X25519_HKDF_SHA256_HKDF_SHA256_AES_256_GCM = (
        "DHKEM_X25519_HKDF_SHA256_HKDF_SHA256_AES_256_GCM"
    )

    def key_template(self) -> Any:
        register_tink_hybrid()
        return getattr(hybrid.hybrid_key_templates, self.value)


ECIES_P256 = HybridScheme.ECIES_P256_HKDF_HMAC_SHA256_AES128_GCM
HPKE_X25519 = HybridScheme.DHKEM_X25519_HKDF_SHA256_HKDF_SHA256_AES_256_GCM


@functools.cache
def register_tink_hybrid() -> None:
    """Register Tink's hybrid key managers (once per process)."""
    hybrid.register()


def _primary_key_data_value(public_keyset: bytes) -> bytes:
    keyset = tink_pb2.Keyset.FromString(public_keyset)
    for key in keyset.key:
        if key.key_id == keyset.primary_key_id:
            return bytes(key.key_data.value)
    raise InvalidKeyError("keyset has no primary key")


class HybridPublicKey:
    """A Tink hybrid public keyset (no secret material)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._encrypter: Any = None

    @classmethod
    def from_keyset(cls, public_keyset: bytes) -> HybridPublicKey:
        """Parse a binary public keyset, as in `EncryptionPublicKey{format: TINK_KEYSET}.data`."""
        register_tink_hybrid()
        try:
            handle = tink.proto_keyset_format.parse_without_secret(public_keyset)
            key = cls(handle)
            key._primitive()
        except (tink.TinkError, DecodeError) as exc:
            raise InvalidKeyError(f"not a Tink hybrid public keyset: {exc}") from exc
        return key

    def keyset(self) -> bytes:
        """The binary public keyset."""
        data: bytes = tink.proto_keyset_format.serialize_without_secret(self._handle)
        return data

    @property
    def primary_key_id(self) -> int:
        """The id Tink writes after the 0x01 prefix byte of each ciphertext (uint32)."""
        key_id: int = self._handle.keyset_info().primary_key_id
        return key_id

    def _primitive(self) -> Any:
        if self._encrypter is None:
            self._encrypter = self._handle.primitive(hybrid.HybridEncrypt)
        return self._encrypter

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt `plaintext` to this key, with empty context info."""
        ciphertext: bytes = self._primitive().encrypt(plaintext, CONTEXT_INFO)
        return ciphertext

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HybridPublicKey) and self.keyset() == other.keyset()

    def __hash__(self) -> int:
        return hash(self.keyset())


class HybridPrivateKey:
    """A Tink hybrid private keyset. Persist it only wrapped by a KEK (`cmms.crypto.keystore`)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._decrypter: Any = None

    @classmethod
    def generate(cls, scheme: HybridScheme) -> HybridPrivateKey:
        """A fresh single-key keyset from `scheme`'s template (output prefix TINK)."""
        return cls(tink.new_keyset_handle(scheme.key_template()))

    @classmethod
    def from_keyset_handle(cls, handle: Any) -> HybridPrivateKey:
        """Adopt a Tink `KeysetHandle` holding a hybrid private keyset."""
        register_tink_hybrid()
        key = cls(handle)
        try:
            key._primitive()
        except tink.TinkError as exc:
            raise InvalidKeyError(f"not a Tink hybrid private keyset: {exc}") from exc
        return key

    @classmethod
    def from_cleartext_keyset(cls, private_keyset: bytes) -> HybridPrivateKey:
        """Parse a cleartext binary private keyset (e.g. a `*_enc_private.tink` test fixture)."""
        register_tink_hybrid()
        try:
            handle = tink.proto_keyset_format.parse(private_keyset, secret_key_access.TOKEN)
        except (tink.TinkError, DecodeError) as exc:
            raise InvalidKeyError(f"not a Tink keyset: {exc}") from exc
        return cls.from_keyset_handle(handle)

    def cleartext_keyset(self) -> bytes:
        """The binary private keyset in clear. Secret: for fixtures and tests only."""
        data: bytes = tink.proto_keyset_format.serialize(self._handle, secret_key_access.TOKEN)
        return data

    @property
    def keyset_handle(self) -> Any:
        """The underlying Tink `KeysetHandle` (for wrapping under a KEK)."""
        return self._handle

    def public_key(self) -> HybridPublicKey:
        """The matching public keyset."""
        return HybridPublicKey(self._handle.public_keyset_handle())

    @property
    def primary_key_id(self) -> int:
        """The Tink id of the primary key (uint32)."""
        key_id: int = self._handle.keyset_info().primary_key_id
        return key_id

    def _primitive(self) -> Any:
        if self._decrypter is None:
            self._decrypter = self._handle.primitive(hybrid.HybridDecrypt)
        return self._decrypter

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt a ciphertext made for this keyset; DecryptionError if it does not authenticate."""
        try:
            plaintext: bytes = self._primitive().decrypt(ciphertext, CONTEXT_INFO)
        except tink.TinkError as exc:
            raise DecryptionError(f"hybrid decryption failed: {exc}") from exc
        return plaintext


def encrypt(public_keyset: bytes, plaintext: bytes) -> bytes:
    """Encrypt `plaintext` to a binary public keyset, with empty context info."""
    return HybridPublicKey.from_keyset(public_keyset).encrypt(plaintext)


def private_key_id(public_key: HybridPublicKey) -> int:
    """The key-store id of a keyset: FarmHash Fingerprint64 of the primary key's serialized public
    key proto (`KeyData.value`), read as a signed 64-bit integer (hmss spec §A.2)."""
    fingerprint: int = farmhash.fingerprint64(_primary_key_data_value(public_key.keyset()))
    return fingerprint - (1 << 64) if fingerprint >= 1 << 63 else fingerprint
