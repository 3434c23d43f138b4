"""Envelope encryption: a streaming-AEAD DEK wrapped by a KEK, payloads streamed in chunks."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator

import pytest
import tink
from tink.proto import tink_pb2

from cmms.crypto.envelope import (
    BODY_CHUNK_SIZE,
    DataEncryptionKey,
    new_envelope,
    open_envelope,
)
from cmms.crypto.errors import DecryptionError, InvalidKeyError
from cmms.crypto.hybrid import ECIES_P256, HybridPrivateKey
from cmms.crypto.keystore import Aead, aead_from_cleartext_keyset, generate_kek_keyset

PAYLOAD_SIZE = 3 * 1024 * 1024 + 12345  # several 1 MiB segments plus a partial one


@pytest.fixture(scope="module")
def kek() -> Aead:
    return aead_from_cleartext_keyset(generate_kek_keyset())


@pytest.fixture(scope="module")
def payload() -> bytes:
    return random.Random(7).randbytes(PAYLOAD_SIZE)


@pytest.fixture(scope="module")
def dek() -> DataEncryptionKey:
    return DataEncryptionKey.generate()


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture(scope="module")
def ciphertext_chunks(dek: DataEncryptionKey, payload: bytes) -> list[bytes]:
    return list(dek.encrypt_chunks(_pieces(payload, 100_000)))


def test_round_trip_over_several_megabytes(
    dek: DataEncryptionKey, payload: bytes, ciphertext_chunks: list[bytes]
) -> None:
    assert b"".join(dek.decrypt_chunks(ciphertext_chunks)) == payload


def test_ciphertext_is_cut_in_32_kib_chunks(ciphertext_chunks: list[bytes]) -> None:
    assert all(len(chunk) == BODY_CHUNK_SIZE for chunk in ciphertext_chunks[:-1])
    assert 0 < len(ciphertext_chunks[-1]) <= BODY_CHUNK_SIZE
    assert sum(map(len, ciphertext_chunks)) > PAYLOAD_SIZE


def test_decryption_accepts_arbitrary_chunk_boundaries(
    dek: DataEncryptionKey, payload: bytes, ciphertext_chunks: list[bytes]
) -> None:
    ciphertext = b"".join(ciphertext_chunks)
    rng = random.Random(3)
    cuts = sorted(rng.sample(range(1, len(ciphertext)), 40))
    pieces = [ciphertext[a:b] for a, b in zip([0, *cuts], [*cuts, len(ciphertext)], strict=True)]
    assert b"".join(dek.decrypt_chunks(pieces)) == payload


def test_encryption_streams_without_reading_all_input_first(dek: DataEncryptionKey) -> None:
    consumed = 0

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for _ in range(128):  # 8 MiB
            consumed += 1
            yield bytes(64 * 1024)

    output = dek.encrypt_chunks(source())
    next(output)
    assert consumed <= 48  # at most ~3 MiB buffered (Tink holds about two 1 MiB segments)


def test_decryption_streams_without_reading_all_input_first(dek: DataEncryptionKey) -> None:
    chunks = list(dek.encrypt_chunks(bytes(64 * 1024) for _ in range(128)))  # 8 MiB
    consumed = 0

    def source() -> Iterator[bytes]:
        nonlocal consumed
        for chunk in chunks:
            consumed += 1
            yield chunk

    output = dek.decrypt_chunks(source())
    assert next(output) == bytes(1024 * 1024)
    assert consumed * BODY_CHUNK_SIZE <= 3 * 1024 * 1024


def test_empty_payload_round_trips(dek: DataEncryptionKey) -> None:
    chunks = list(dek.encrypt_chunks([]))
    assert len(chunks) == 1
    assert b"".join(dek.decrypt_chunks(chunks)) == b""


def test_corrupted_chunk_is_detected(
    dek: DataEncryptionKey, ciphertext_chunks: list[bytes]
) -> None:
    corrupted = list(ciphertext_chunks)
    middle = len(corrupted) // 2
    corrupted[middle] = (
        corrupted[middle][:100] + bytes([corrupted[middle][100] ^ 1]) + (corrupted[middle][101:])
    )
    with pytest.raises(DecryptionError, match="streaming decryption failed"):
        for _ in dek.decrypt_chunks(corrupted):
            pass


def test_truncated_stream_is_detected(
    dek: DataEncryptionKey, ciphertext_chunks: list[bytes]
) -> None:
    with pytest.raises(DecryptionError):
        for _ in dek.decrypt_chunks(ciphertext_chunks[:-1]):
            pass


def test_reordered_chunks_are_detected(
    dek: DataEncryptionKey, ciphertext_chunks: list[bytes]
) -> None:
    # Swap two whole 1 MiB segments' worth of chunks (32 chunks each), past the header.
    swapped = ciphertext_chunks[:1] + ciphertext_chunks[33:65] + ciphertext_chunks[1:33]
    swapped += ciphertext_chunks[65:]
    with pytest.raises(DecryptionError):
        for _ in dek.decrypt_chunks(swapped):
            pass


def test_other_dek_cannot_decrypt(ciphertext_chunks: list[bytes]) -> None:
    with pytest.raises(DecryptionError):
        for _ in DataEncryptionKey.generate().decrypt_chunks(ciphertext_chunks):
            pass


def test_dek_wrap_unwrap_with_kek(
    kek: Aead, dek: DataEncryptionKey, payload: bytes, ciphertext_chunks: list[bytes]
) -> None:
    restored = DataEncryptionKey.unwrap(dek.wrap(kek), kek)
    assert b"".join(restored.decrypt_chunks(ciphertext_chunks)) == payload


def test_wrapped_dek_is_an_encrypted_keyset_for_the_1mb_template(
    kek: Aead, dek: DataEncryptionKey
) -> None:
    encrypted = tink_pb2.EncryptedKeyset.FromString(dek.wrap(kek))
    keyset = tink_pb2.Keyset.FromString(kek.decrypt(encrypted.encrypted_keyset, b""))
    assert keyset.key[0].key_data.type_url.endswith("AesGcmHkdfStreamingKey")
    assert keyset.key[0].key_data.value not in dek.wrap(kek)


def test_wrong_kek_cannot_unwrap_dek(kek: Aead, dek: DataEncryptionKey) -> None:
    other = aead_from_cleartext_keyset(generate_kek_keyset())
    with pytest.raises(DecryptionError):
        DataEncryptionKey.unwrap(dek.wrap(kek), other)


def test_hybrid_keyset_is_not_a_dek(kek: Aead) -> None:
    handle = HybridPrivateKey.generate(ECIES_P256).keyset_handle
    wrapped = tink.proto_keyset_format.serialize_encrypted(handle, kek, b"")
    with pytest.raises(InvalidKeyError, match="streaming AEAD"):
        DataEncryptionKey.unwrap(wrapped, kek)


def test_file_objects_round_trip(dek: DataEncryptionKey, payload: bytes) -> None:
    ciphertext = io.BytesIO()
    dek.encrypt_file(io.BytesIO(payload), ciphertext)
    assert not ciphertext.closed
    plaintext = io.BytesIO()
    dek.decrypt_file(io.BytesIO(ciphertext.getvalue()), plaintext)
    assert plaintext.getvalue() == payload


def test_envelope_through_a_kms_client(kek: Aead, payload: bytes) -> None:
    class OneKeyKms:
        def supports(self, key_uri: str) -> bool:
            return key_uri == "test-kms://kek"

        def get_aead(self, key_uri: str) -> Aead:
            assert self.supports(key_uri)
            return kek

    kms = OneKeyKms()
    dek, encrypted_dek = new_envelope(kms, "test-kms://kek")
    chunks = list(dek.encrypt_chunks([payload[:1000]]))
    opened = open_envelope(kms, "test-kms://kek", encrypted_dek)
    assert b"".join(opened.decrypt_chunks(chunks)) == payload[:1000]


def test_non_positive_chunk_size_is_refused(dek: DataEncryptionKey) -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        next(dek.encrypt_chunks([b"x"], chunk_size=0))
