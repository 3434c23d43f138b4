"""Streaming a client-streamed body into a BlobStore without holding it in memory.

The body generator checks the stream as it goes (only body chunks after the header, a size cap)
and, at the end, that the length fits the payload's record size. It raises a `StatusError`
from inside the store's write, and `BlobStore.write` is atomic, so a rejected or truncated
body never becomes visible under its key.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from cmms.common.grpc import StatusError
from cmms.storage import BlobStore, BlobStoreError

Message = TypeVar("Message")


@dataclass(frozen=True)
class BodyRules:
    max_bytes: int
    record_size: int | None = None
    # Whether at least one body message must follow the header.
    required: bool = True


async def body_chunks(
    messages: AsyncIterable[Message],
    chunk_of: Callable[[Message], bytes | None],
    rules: BodyRules,
) -> AsyncIterator[bytes]:
    """The data of each body message; `chunk_of` returns None for a message that is no chunk."""
    total = 0
    count = 0
    async for message in messages:
        data = chunk_of(message)
        if data is None:
            raise StatusError(
                grpc.StatusCode.INVALID_ARGUMENT, "only the first message may be a header"
            )
        count += 1
        total += len(data)
        if total > rules.max_bytes:
            raise StatusError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"body exceeds the maximum of {rules.max_bytes} bytes",
            )
        if data:
            yield data
    if rules.required and count == 0:
        raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, "the request has no body")
    if rules.record_size and total % rules.record_size:
        raise StatusError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"body of {total} bytes is not a multiple of the {rules.record_size}-byte record",
        )


async def store_body(store: BlobStore, key: str, chunks: AsyncIterable[bytes]) -> int:
    """Write `chunks` under `key`; storage failures are UNAVAILABLE (the sender may retry)."""
    try:
        return await store.write(key, chunks)
    except StatusError:
        raise
    except (BlobStoreError, OSError) as error:
        raise StatusError(
            grpc.StatusCode.UNAVAILABLE, f"could not store the body: {error}"
        ) from error
