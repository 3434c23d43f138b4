"""A view of a store under a fixed key prefix (the duchy's computation and requisition stores).

The database records blob paths without their store prefix (duchy_internals §1.7); a view lets
the code that reads those paths use them directly, while the physical key carries the prefix.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable

from cmms.storage.base import BlobStore
from cmms.storage.errors import BlobNotFoundError, InvalidBlobKeyError
from cmms.storage.validation import validate_key


class PrefixedBlobStore(BlobStore):
    """Key `k` of this view is key `prefix + k` of `inner`; keys outside the prefix are unseen.

    Closing the view leaves `inner` open: the view does not own it.
    """

    def __init__(self, inner: BlobStore, prefix: str) -> None:
        if not prefix.endswith("/"):
            raise InvalidBlobKeyError(f"a store view prefix must end with '/', got {prefix!r}")
        validate_key(prefix[:-1])
        self.inner = inner
        self.prefix = prefix

    async def _write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        return await self.inner.write(self.prefix + key, chunks)

    async def _read(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in self.inner.read(self.prefix + key, chunk_size):
                yield chunk
        except BlobNotFoundError:
            # Report the key the caller used, not the physical one.
            raise BlobNotFoundError(key) from None

    async def _exists(self, key: str) -> bool:
        return await self.inner.exists(self.prefix + key)

    async def _size(self, key: str) -> int:
        try:
            return await self.inner.size(self.prefix + key)
        except BlobNotFoundError:
            raise BlobNotFoundError(key) from None

    async def _delete(self, key: str) -> None:
        await self.inner.delete(self.prefix + key)

    async def _list(self, prefix: str) -> AsyncGenerator[str, None]:
        async for key in self.inner.list(self.prefix + prefix):
            yield key[len(self.prefix) :]
