"""`memory://[name]`: an in-process store for tests and single-process demos.

`memory://` gives a fresh private store; `memory://name` gives the process-wide store of that
name, so components wired separately from the same URL share their blobs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterable

from cmms.storage.base import BlobStore
from cmms.storage.errors import BlobNotFoundError, UnsupportedBlobStoreUrlError
from cmms.storage.url import BlobStoreUrl


class MemoryBlobStore(BlobStore):
    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}

    async def _write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        parts = [bytes(chunk) async for chunk in chunks]
        # Only a fully received blob is published, in one dict assignment.
        self._blobs[key] = b"".join(parts)
        return len(self._blobs[key])

    async def _read(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]:
        data = self._blobs.get(key)
        if data is None:
            raise BlobNotFoundError(key)
        view = memoryview(data)
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
            # Give other tasks a turn, as a real backend's I/O would.
            await asyncio.sleep(0)

    async def _exists(self, key: str) -> bool:
        return key in self._blobs

    async def _size(self, key: str) -> int:
        data = self._blobs.get(key)
        if data is None:
            raise BlobNotFoundError(key)
        return len(data)

    async def _delete(self, key: str) -> None:
        self._blobs.pop(key, None)

    async def _list(self, prefix: str) -> AsyncGenerator[str, None]:
        for key in sorted(k for k in self._blobs if k.startswith(prefix)):
            yield key


_NAMED_STORES: dict[str, MemoryBlobStore] = {}


def memory_store(name: str = "") -> MemoryBlobStore:
    """A new store when `name` is empty, otherwise the process-wide store called `name`."""
    if not name:
        return MemoryBlobStore()
    return _NAMED_STORES.setdefault(name, MemoryBlobStore())


def open_memory_store(url: BlobStoreUrl) -> MemoryBlobStore:
    url.reject_unknown_options(set())
    if url.path.strip("/"):
        raise UnsupportedBlobStoreUrlError(f"{url.url!r}: a memory store takes a name, not a path")
    return memory_store(url.location)
