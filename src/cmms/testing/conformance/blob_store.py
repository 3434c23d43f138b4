"""Conformance suite for `BlobStore` backends.

Subclass `BlobStoreConformance` in a test module and provide a function-scoped `store` fixture
that yields a fresh, empty store (object-store backends: a unique prefix per test). Every backend
must pass every test; the suite is the executable form of the guarantees in `BlobStore`'s
docstring.

Large-blob cases are sized to cross the chunking of the cloud backends (S3 parts of at least
5 MiB, GCS resumable chunks), so an interrupted write really has a multipart upload or resumable
session under way when it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Sequence

import pytest

from cmms.storage import (
    BlobNotFoundError,
    BlobStore,
    InvalidBlobKeyError,
    iterate,
    split_into_chunks,
)

MIB = 1024 * 1024
# Above the largest default part or chunk size of any backend (8 MiB), so at least one part is
# uploaded before the end of the stream.
LARGE_BLOB_SIZE = 11 * MIB + 123
WRITE_CHUNK_SIZE = 1 * MIB

INVALID_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("../outside", id="leading-dotdot"),
    pytest.param("a/../../outside", id="inner-dotdot"),
    pytest.param("..", id="dotdot"),
    pytest.param("a/./b", id="dot-segment"),
    pytest.param("a\\b", id="backslash"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("a//b", id="empty-segment"),
    pytest.param("a/", id="trailing-slash"),
]
INVALID_PREFIXES = [
    pytest.param("/abs", id="absolute"),
    pytest.param("../", id="dotdot"),
    pytest.param("a\\", id="backslash"),
    pytest.param("a\x00", id="nul"),
]


class ChunkSourceFailed(Exception):
    """Raised by the suite's chunk iterators to interrupt a write half-way."""


def generated_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def uneven_chunks(data: bytes, seed: int) -> list[bytes]:
    """`data` cut into pieces of varying sizes around `WRITE_CHUNK_SIZE` (some empty)."""
    chooser = random.Random(seed)
    pieces, position = [], 0
    while position < len(data):
        size = chooser.choice(
            [0, 1, 4096, WRITE_CHUNK_SIZE // 2, WRITE_CHUNK_SIZE, WRITE_CHUNK_SIZE + 7]
        )
        pieces.append(data[position : position + size])
        position += size
    return pieces


async def failing_after(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk
    raise ChunkSourceFailed("the chunk source failed half-way")


async def interleaving(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    """Yield to the event loop between chunks so concurrent writers really interleave."""
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


async def collect(iterator: AsyncIterator[bytes]) -> list[bytes]:
    return [chunk async for chunk in iterator]


async def all_keys(store: BlobStore, prefix: str = "") -> list[str]:
    return [key async for key in store.list(prefix)]


class BlobStoreConformance:
    """Tests every `BlobStore` backend must pass; needs a `store` fixture."""

    # --- round trips ---------------------------------------------------------------------------

    async def test_small_blob_round_trip(self, store: BlobStore) -> None:
        assert await store.write_bytes("greeting", b"hello, duchy") == 12
        assert await store.read_bytes("greeting") == b"hello, duchy"
        assert await store.size("greeting") == 12
        assert await store.exists("greeting")

    async def test_empty_blob_round_trip(self, store: BlobStore) -> None:
        assert await store.write("from-no-chunks", iterate([])) == 0
        assert await store.write("from-empty-chunk", iterate([b""])) == 0
        for key in ("from-no-chunks", "from-empty-chunk"):
            assert await store.exists(key)
            assert await store.size(key) == 0
            assert await collect(store.read(key)) == []
        assert await all_keys(store) == ["from-empty-chunk", "from-no-chunks"]

    async def test_multi_chunk_blob_round_trip(self, store: BlobStore) -> None:
        data = generated_bytes(LARGE_BLOB_SIZE, seed=1)
        written = await store.write("stage/large", iterate(uneven_chunks(data, seed=2)))
        assert written == len(data)
        assert await store.size("stage/large") == len(data)
        read_chunk_size = 3 * MIB
        chunks = await collect(store.read("stage/large", chunk_size=read_chunk_size))
        assert all(0 < len(chunk) <= read_chunk_size for chunk in chunks)
        assert len(chunks) >= -(-len(data) // read_chunk_size)
        assert b"".join(chunks) == data

    async def test_read_chunks_never_exceed_chunk_size(self, store: BlobStore) -> None:
        data = generated_bytes(1000, seed=3)
        await store.write_bytes("small", data)
        chunks = await collect(store.read("small", chunk_size=64))
        assert all(0 < len(chunk) <= 64 for chunk in chunks)
        assert b"".join(chunks) == data

    async def test_read_rejects_non_positive_chunk_size(self, store: BlobStore) -> None:
        await store.write_bytes("k", b"x")
        with pytest.raises(ValueError, match="chunk_size"):
            store.read("k", chunk_size=0)

    async def test_binary_content_is_preserved(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 4
        await store.write_bytes("binary", data)
        assert await store.read_bytes("binary") == data

    async def test_stopping_a_read_early_releases_the_blob(self, store: BlobStore) -> None:
        data = generated_bytes(4 * 1024, seed=4)
        await store.write_bytes("k", data)
        async with contextlib.aclosing(store.read("k", chunk_size=1024)) as reader:
            first = await anext(reader)
        assert first == data[:1024]
        await store.write_bytes("k", b"replaced")
        await store.delete("k")
        assert not await store.exists("k")

    # --- overwrite, exists, size, delete, list -------------------------------------------------

    async def test_overwrite_replaces_the_whole_blob(self, store: BlobStore) -> None:
        await store.write_bytes("k", b"a much longer first version")
        await store.write_bytes("k", b"short")
        assert await store.read_bytes("k") == b"short"
        assert await store.size("k") == 5
        assert await all_keys(store) == ["k"]

    async def test_missing_key(self, store: BlobStore) -> None:
        assert not await store.exists("missing/blob")
        with pytest.raises(BlobNotFoundError) as raised:
            await store.read_bytes("missing/blob")
        assert raised.value.key == "missing/blob"
        with pytest.raises(BlobNotFoundError):
            await collect(store.read("missing/blob"))
        with pytest.raises(BlobNotFoundError):
            await store.size("missing/blob")

    async def test_a_key_prefix_is_not_a_blob(self, store: BlobStore) -> None:
        await store.write_bytes("dir/child", b"x")
        assert not await store.exists("dir")
        with pytest.raises(BlobNotFoundError):
            await store.read_bytes("dir")
        with pytest.raises(BlobNotFoundError):
            await store.size("dir")

    async def test_delete(self, store: BlobStore) -> None:
        await store.write_bytes("a/b/c", b"x")
        await store.write_bytes("a/b/d", b"y")
        await store.delete("a/b/c")
        assert not await store.exists("a/b/c")
        with pytest.raises(BlobNotFoundError):
            await store.read_bytes("a/b/c")
        assert await store.read_bytes("a/b/d") == b"y"
        assert await all_keys(store) == ["a/b/d"]

    async def test_delete_of_a_missing_key_succeeds(self, store: BlobStore) -> None:
        await store.delete("never/written")
        await store.write_bytes("k", b"x")
        await store.delete("k")
        await store.delete("k")
        assert await all_keys(store) == []

    async def test_list_by_prefix(self, store: BlobStore) -> None:
        keys = [
            "computations/g1/SETUP/0",
            "computations/g1/SETUP/1",
            "computations/g1/WAIT_PHASE_ONE/0",
            "computations/g10/SETUP/0",
            "requisitions/g1/r1",
            "top-level",
        ]
        for key in reversed(keys):
            await store.write_bytes(key, key.encode())
        assert await all_keys(store) == sorted(keys)
        assert await all_keys(store, "computations/g1/") == keys[:3]
        # A prefix is a string prefix, not a directory: "g1" also matches "g10".
        assert await all_keys(store, "computations/g1") == keys[:4]
        assert await all_keys(store, "computations/g1/SETUP/") == keys[:2]
        assert await all_keys(store, "requisitions/") == ["requisitions/g1/r1"]
        assert await all_keys(store, "top") == ["top-level"]
        assert await all_keys(store, "nothing/here/") == []

    # --- atomic visibility ---------------------------------------------------------------------

    async def test_interrupted_write_leaves_nothing_visible(self, store: BlobStore) -> None:
        data = generated_bytes(LARGE_BLOB_SIZE, seed=5)
        with pytest.raises(ChunkSourceFailed):
            await store.write("k", failing_after(list(split_into_chunks(data, WRITE_CHUNK_SIZE))))
        assert not await store.exists("k")
        with pytest.raises(BlobNotFoundError):
            await store.read_bytes("k")
        with pytest.raises(BlobNotFoundError):
            await store.size("k")
        assert await all_keys(store) == []

    async def test_interrupted_overwrite_keeps_the_previous_version(self, store: BlobStore) -> None:
        previous = generated_bytes(300_000, seed=6)
        await store.write_bytes("k", previous)
        replacement = generated_bytes(LARGE_BLOB_SIZE, seed=7)
        with pytest.raises(ChunkSourceFailed):
            await store.write(
                "k", failing_after(list(split_into_chunks(replacement, WRITE_CHUNK_SIZE)))
            )
        assert await store.read_bytes("k") == previous
        assert await store.size("k") == len(previous)
        assert await all_keys(store) == ["k"]

    async def test_interrupted_empty_write_leaves_nothing(self, store: BlobStore) -> None:
        with pytest.raises(ChunkSourceFailed):
            await store.write("k", failing_after([]))
        assert await all_keys(store) == []

    async def test_blob_being_written_is_invisible_until_complete(self, store: BlobStore) -> None:
        data = generated_bytes(LARGE_BLOB_SIZE, seed=8)
        chunks = list(split_into_chunks(data, WRITE_CHUNK_SIZE))
        halfway, resume = asyncio.Event(), asyncio.Event()

        async def paused_half_way() -> AsyncIterator[bytes]:
            for index, chunk in enumerate(chunks):
                if index == len(chunks) - 1:
                    # Everything but the last chunk has been handed to (and taken by) the store.
                    halfway.set()
                    await resume.wait()
                yield chunk

        writer = asyncio.create_task(store.write("k", paused_half_way()))
        await asyncio.wait_for(halfway.wait(), timeout=60)
        assert not await store.exists("k")
        assert await all_keys(store) == []
        with pytest.raises(BlobNotFoundError):
            await store.read_bytes("k")
        resume.set()
        assert await asyncio.wait_for(writer, timeout=60) == len(data)
        assert await store.read_bytes("k") == data

    async def test_concurrent_writers_to_different_keys(self, store: BlobStore) -> None:
        contents = {f"w/{i}": generated_bytes(700_000 + i, seed=100 + i) for i in range(6)}
        totals = await asyncio.gather(
            *(
                store.write(key, interleaving(list(split_into_chunks(data, 128 * 1024))))
                for key, data in contents.items()
            )
        )
        assert totals == [len(data) for data in contents.values()]
        assert await all_keys(store) == sorted(contents)
        for key, data in contents.items():
            assert await store.read_bytes(key) == data

    async def test_concurrent_writers_to_one_key_never_mix(self, store: BlobStore) -> None:
        first, second = generated_bytes(600_000, seed=9), generated_bytes(600_000, seed=10)
        await asyncio.gather(
            store.write("k", interleaving(list(split_into_chunks(first, 64 * 1024)))),
            store.write("k", interleaving(list(split_into_chunks(second, 64 * 1024)))),
        )
        assert await store.read_bytes("k") in (first, second)
        assert await all_keys(store) == ["k"]

    # --- key validation ------------------------------------------------------------------------

    @pytest.mark.parametrize("key", INVALID_KEYS)
    async def test_invalid_keys_are_rejected(self, store: BlobStore, key: str) -> None:
        with pytest.raises(InvalidBlobKeyError):
            await store.write_bytes(key, b"x")
        with pytest.raises(InvalidBlobKeyError):
            await store.read_bytes(key)
        with pytest.raises(InvalidBlobKeyError):
            await store.exists(key)
        with pytest.raises(InvalidBlobKeyError):
            await store.size(key)
        with pytest.raises(InvalidBlobKeyError):
            await store.delete(key)
        assert await all_keys(store) == []

    @pytest.mark.parametrize("prefix", INVALID_PREFIXES)
    async def test_invalid_prefixes_are_rejected(self, store: BlobStore, prefix: str) -> None:
        with pytest.raises(InvalidBlobKeyError):
            await all_keys(store, prefix)

    async def test_invalid_key_is_rejected_before_consuming_chunks(self, store: BlobStore) -> None:
        consumed = []

        async def watched() -> AsyncIterator[bytes]:
            consumed.append(True)
            yield b"x"

        with pytest.raises(InvalidBlobKeyError, match="relative"):
            await store.write("/absolute", watched())
        assert consumed == []
