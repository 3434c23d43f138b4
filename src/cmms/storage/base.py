"""The `BlobStore` interface: streamed, atomically visible blobs under validated keys.

Public methods validate their arguments once, here, then call the backend's `_`-prefixed hook,
so no backend can forget a check.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import Self

from cmms.storage.validation import validate_key, validate_prefix

MIB = 1024 * 1024
DEFAULT_READ_CHUNK_SIZE = 1 * MIB


class BlobStore(abc.ABC):
    """Flat key -> bytes storage with streamed reads and writes.

    Guarantees every backend keeps (checked by `cmms.testing.conformance.blob_store`):

    * A blob becomes visible under its key only once its whole content is stored; a write that
      fails (including one whose chunk iterator raises) leaves the previous blob, if any, intact
      and nothing new visible through `read`, `exists`, `size` or `list`.
    * Writing an existing key replaces its content (deterministic keys make retries idempotent).
    * Reads and writes hold a bounded number of chunks in memory, never the whole blob.
    * `delete` of a missing key is a no-op.
    """

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the concatenation of `chunks` under `key`; return the number of bytes written."""
        return await self._write(validate_key(key), chunks)

    def read(
        self, key: str, chunk_size: int = DEFAULT_READ_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        """Stream the blob under `key` as non-empty chunks of at most `chunk_size` bytes.

        A missing key raises `BlobNotFoundError` when iteration starts. Close the iterator
        (`contextlib.aclosing`) when stopping early, so the backend releases its handle at once.
        """
        validate_key(key)
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        return self._read(key, chunk_size)

    async def write_bytes(self, key: str, data: bytes) -> int:
        """Store `data` under `key` (for small blobs; large ones should be streamed)."""
        return await self.write(key, _single_chunk(data))

    async def read_bytes(self, key: str) -> bytes:
        """The whole blob under `key` (for small blobs; large ones should be streamed)."""
        return b"".join([chunk async for chunk in self.read(key)])

    async def exists(self, key: str) -> bool:
        return await self._exists(validate_key(key))

    async def size(self, key: str) -> int:
        """Size in bytes of the blob under `key`; `BlobNotFoundError` if there is none."""
        return await self._size(validate_key(key))

    async def delete(self, key: str) -> None:
        """Remove the blob under `key`; deleting a missing key succeeds."""
        await self._delete(validate_key(key))

    def list(self, prefix: str = "") -> AsyncGenerator[str, None]:
        """Keys starting with `prefix` (a plain string prefix, not a directory), in sorted order."""
        return self._list(validate_prefix(prefix))

    async def close(self) -> None:
        """Release clients and connection pools. The store must not be used afterwards."""
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @abc.abstractmethod
    async def _write(self, key: str, chunks: AsyncIterable[bytes]) -> int: ...

    @abc.abstractmethod
    def _read(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]: ...

    @abc.abstractmethod
    async def _exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    async def _size(self, key: str) -> int: ...

    @abc.abstractmethod
    async def _delete(self, key: str) -> None: ...

    @abc.abstractmethod
    def _list(self, prefix: str) -> AsyncGenerator[str, None]: ...


async def _single_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def iterate(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    """Adapt an in-memory sequence of chunks to the `AsyncIterable` that `write` takes."""
    for chunk in chunks:
        yield chunk


def split_into_chunks(data: bytes | bytearray | memoryview, chunk_size: int) -> Iterable[bytes]:
    """`data` cut into `chunk_size` pieces (the last may be shorter); nothing for empty data."""
    view = memoryview(data)
    for start in range(0, len(view), chunk_size):
        yield bytes(view[start : start + chunk_size])


def take_front(buffer: bytearray, size: int) -> bytes:
    """Remove and return the first `size` bytes of `buffer`, copying them only once."""
    with memoryview(buffer) as view:
        front = bytes(view[:size])
    del buffer[:size]
    return front
