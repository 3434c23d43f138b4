"""The file backend's own promises: nothing partial left on disk, tidy directories, and
bounded memory while streaming hundreds of megabytes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cmms.storage import BlobStoreError, InvalidBlobKeyError, iterate
from cmms.storage.filesystem import PARTIAL_SUFFIX, STALE_PARTIAL_SECONDS, FileBlobStore
from cmms.testing.conformance.blob_store import ChunkSourceFailed, failing_after

MIB = 1024 * 1024


def files_under(root: Path) -> list[str]:
    return sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())


async def test_blob_is_a_plain_file_under_the_root(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    await store.write_bytes("computations/g/SETUP/0", b"data")
    assert (tmp_path / "computations" / "g" / "SETUP" / "0").read_bytes() == b"data"
    assert files_under(tmp_path) == ["computations/g/SETUP/0"]


async def test_partial_file_exists_only_while_writing(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    started, finish = asyncio.Event(), asyncio.Event()

    async def paused() -> AsyncIterator[bytes]:
        yield b"first half "
        started.set()
        await finish.wait()
        yield b"second half"

    writer = asyncio.create_task(store.write("a/k", paused()))
    await asyncio.wait_for(started.wait(), timeout=10)
    in_progress = files_under(tmp_path)
    assert len(in_progress) == 1 and in_progress[0].endswith(PARTIAL_SUFFIX)
    assert [key async for key in store.list()] == []
    finish.set()
    await asyncio.wait_for(writer, timeout=10)
    assert files_under(tmp_path) == ["a/k"]


async def test_failed_write_removes_its_partial_file(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    with pytest.raises(ChunkSourceFailed):
        await store.write("a/b/k", failing_after([b"x" * 1000, b"y" * 1000]))
    assert files_under(tmp_path) == []


async def test_cancelled_write_removes_its_partial_file(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    started = asyncio.Event()

    async def never_ends() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        started.set()
        await asyncio.Event().wait()
        yield b""

    writer = asyncio.create_task(store.write("k", never_ends()))
    await asyncio.wait_for(started.wait(), timeout=10)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert files_under(tmp_path) == []


async def test_keys_cannot_name_partial_files(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    with pytest.raises(InvalidBlobKeyError, match="reserves"):
        await store.write_bytes(f"a/.k.0123{PARTIAL_SUFFIX}", b"x")


async def test_delete_prunes_empty_directories_but_not_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = FileBlobStore(root)
    await store.write_bytes("computations/g1/SETUP/0", b"x")
    await store.write_bytes("computations/g2/SETUP/0", b"y")
    await store.delete("computations/g1/SETUP/0")
    assert not (root / "computations" / "g1").exists()
    assert (root / "computations" / "g2" / "SETUP" / "0").is_file()
    await store.delete("computations/g2/SETUP/0")
    assert root.is_dir() and list(root.iterdir()) == []


async def test_key_that_is_also_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    await store.write_bytes("a/b", b"x")
    with pytest.raises(BlobStoreError, match="other blobs' keys start with 'a/'"):
        await store.write_bytes("a", b"y")
    with pytest.raises(BlobStoreError, match="needs a directory"):
        await store.write_bytes("a/b/c", b"z")
    assert files_under(tmp_path) == ["a/b"]


def test_root_must_be_absolute() -> None:
    with pytest.raises(InvalidBlobKeyError, match="absolute"):
        FileBlobStore("relative/dir")


async def test_write_and_delete_racing_on_one_directory(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)

    async def churn(index: int) -> None:
        for round_ in range(20):
            await store.write(f"shared/dir/{index}", iterate([b"x", str(round_).encode()]))
            await store.delete(f"shared/dir/{index}")

    await asyncio.gather(*(churn(index) for index in range(4)))
    assert files_under(tmp_path) == []


def _resident_set_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
async def test_streaming_a_large_blob_keeps_memory_bounded(tmp_path: Path) -> None:
    total_size, chunk_size = 256 * MIB, 4 * MIB
    store = FileBlobStore(tmp_path)
    block = os.urandom(chunk_size)
    baseline = _resident_set_bytes()
    peak = baseline
    written_digest = hashlib.sha256()

    async def generated() -> AsyncIterator[bytes]:
        nonlocal peak
        for index in range(total_size // chunk_size):
            # Each chunk differs, so a mix-up of chunks would change the digest.
            chunk = index.to_bytes(8, "big") + block[8:]
            written_digest.update(chunk)
            peak = max(peak, _resident_set_bytes())
            yield chunk

    assert await store.write("large", generated()) == total_size
    read_digest = hashlib.sha256()
    async for chunk in store.read("large", chunk_size=chunk_size):
        read_digest.update(chunk)
        peak = max(peak, _resident_set_bytes())
    peak = max(peak, _resident_set_bytes())

    assert read_digest.hexdigest() == written_digest.hexdigest()
    assert await store.size("large") == total_size
    # Holding the blob would add 256 MiB; streaming holds a few chunks.
    assert peak - baseline < 64 * MIB, f"RSS grew by {(peak - baseline) / MIB:.0f} MiB"


async def test_delete_removes_what_a_killed_writer_of_the_key_left(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    await store.write_bytes("computations/g/WAIT/1", b"whole")
    directory = tmp_path / "computations" / "g" / "WAIT"
    # A writer SIGKILLed half-way leaves its partial file; a live one keeps touching its own.
    dead = directory / f".1.0123456789abcdef{PARTIAL_SUFFIX}"
    alive = directory / f".1.fedcba9876543210{PARTIAL_SUFFIX}"
    other = directory / f".2.0123456789abcdef{PARTIAL_SUFFIX}"
    for partial in (dead, alive, other):
        partial.write_bytes(b"half")
    old = time.time() - STALE_PARTIAL_SECONDS - 60
    for partial in (dead, other):
        os.utime(partial, (old, old))
    assert [key async for key in store.list()] == ["computations/g/WAIT/1"]

    await store.delete("computations/g/WAIT/1")
    assert not dead.exists()
    assert alive.exists() and other.exists()  # a live writer's, and another key's
    # A key that was never written whole: its leftovers go too, and the directory with them.
    alive.unlink()
    await store.write_bytes("computations/g/OTHER/0", b"keeps g")
    await store.delete("computations/g/WAIT/2")
    assert not other.exists()
    await store.delete("computations/g/OTHER/0")
    assert not (tmp_path / "computations").exists()
