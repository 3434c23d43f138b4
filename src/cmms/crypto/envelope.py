"""Envelope encryption of TrusTee payloads (hmss spec §B.3).

A fresh streaming-AEAD data-encryption key (Tink `AES256_GCM_HKDF_1MB`) encrypts the payload with
empty associated data; the DEK travels as a Tink encrypted keyset sealed by a KMS key-encryption
key. Encryption and decryption run over iterables of byte chunks in bounded memory (about one 1 MiB
segment plus one output chunk).

Decryption yields plaintext segment by segment as each authenticates; truncation is only detected at
the end, so a caller must not act on the output until iteration finished without DecryptionError.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import tink
from tink import streaming_aead

from cmms.crypto.errors import DecryptionError, InvalidKeyError
from cmms.crypto.keystore import Aead, KmsClient, unwrap_keyset, wrap_keyset

ASSOCIATED_DATA = b""
BODY_CHUNK_SIZE = 32 * 1024
_DECRYPT_READ_SIZE = 1024 * 1024


@functools.cache
def register_tink_streaming_aead() -> None:
    """Register Tink's streaming AEAD key managers (once per process)."""
    streaming_aead.register()


class _CiphertextSink(io.RawIOBase):
    """Collects what the encrypting stream writes, to be handed out chunk by chunk."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytearray:
        taken = self._buffer
        self._buffer = bytearray()
        return taken


class _ChunkSource(io.RawIOBase):
    """A readable file over an iterable of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._current:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._current = memoryview(chunk)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        return count


def _file_chunks(source: BinaryIO, size: int) -> Iterator[bytes]:
    while chunk := source.read(size):
        yield chunk


class DataEncryptionKey:
    """A streaming-AEAD keyset used once per payload."""

    def __init__(self, keyset_handle: Any) -> None:
        register_tink_streaming_aead()
        try:
            self._primitive: Any = keyset_handle.primitive(streaming_aead.StreamingAead)
        except tink.TinkError as exc:
            raise InvalidKeyError(f"not a Tink streaming AEAD keyset: {exc}") from exc
        self._handle = keyset_handle

    @classmethod
    def generate(cls) -> DataEncryptionKey:
        """A fresh `AES256_GCM_HKDF_1MB` keyset."""
        register_tink_streaming_aead()
        template = streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_1MB
        return cls(tink.new_keyset_handle(template))

    def wrap(self, kek: Aead) -> bytes:
        """This DEK as a binary Tink encrypted keyset under `kek` (`TINK_ENCRYPTED_KEYSET`)."""
        return wrap_keyset(self._handle, kek)

    @classmethod
    def unwrap(cls, encrypted_dek: bytes, kek: Aead) -> DataEncryptionKey:
        """Open a DEK sealed by `wrap`; DecryptionError if `kek` is not the one that sealed it."""
        return cls(unwrap_keyset(encrypted_dek, kek))

    def encrypt_chunks(
        self, plaintext: Iterable[bytes], *, chunk_size: int = BODY_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Encrypt a stream; yields ciphertext in `chunk_size` pieces (the last may be shorter)."""
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        sink = _CiphertextSink()
        pending = bytearray()
        stream = self._primitive.new_encrypting_stream(sink, ASSOCIATED_DATA)
        with stream:
            for piece in plaintext:
                stream.write(piece)
                pending += sink.take()
                while len(pending) >= chunk_size:
                    yield bytes(pending[:chunk_size])
                    del pending[:chunk_size]
        pending += sink.take()
        for start in range(0, len(pending), chunk_size):
            yield bytes(pending[start : start + chunk_size])

    def decrypt_chunks(self, ciphertext: Iterable[bytes]) -> Iterator[bytes]:
        """Decrypt a stream cut at arbitrary points; DecryptionError on tampering or truncation."""
        try:
            stream = self._primitive.new_decrypting_stream(
                _ChunkSource(ciphertext), ASSOCIATED_DATA
            )
            with stream:
                while plaintext := stream.read(_DECRYPT_READ_SIZE):
                    yield plaintext
        except tink.TinkError as exc:
            raise DecryptionError(f"streaming decryption failed: {exc}") from exc

    def encrypt_file(self, source: BinaryIO, destination: BinaryIO) -> None:
        """Encrypt everything readable from `source` into `destination` (left open)."""
        for chunk in self.encrypt_chunks(_file_chunks(source, _DECRYPT_READ_SIZE)):
            destination.write(chunk)

    def decrypt_file(self, source: BinaryIO, destination: BinaryIO) -> None:
        """Decrypt everything readable from `source` into `destination` (left open)."""
        for chunk in self.decrypt_chunks(_file_chunks(source, _DECRYPT_READ_SIZE)):
            destination.write(chunk)


def new_envelope(kms: KmsClient, kek_uri: str) -> tuple[DataEncryptionKey, bytes]:
    """A fresh DEK and its encrypted keyset sealed by the KMS KEK at `kek_uri`."""
    dek = DataEncryptionKey.generate()
    return dek, dek.wrap(kms.get_aead(kek_uri))


def open_envelope(kms: KmsClient, kek_uri: str, encrypted_dek: bytes) -> DataEncryptionKey:
    """The DEK inside `encrypted_dek`, unsealed by the KMS KEK at `kek_uri`."""
    return DataEncryptionKey.unwrap(encrypted_dek, kms.get_aead(kek_uri))
