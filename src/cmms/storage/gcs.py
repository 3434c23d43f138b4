"""`gs://bucket[/prefix]`: Google Cloud Storage via google-cloud-storage, calls run in threads.

A write is a resumable upload: chunks are sent as they arrive and the object only appears when
the last chunk finalises the session; a failed write cancels the session instead. The session
URI is itself the upload's credential, so its chunk requests go out on a plain HTTP session.

Reads pin the object generation seen at the start, so an overwrite during a read can end it with
`BlobNotFoundError` but can never splice two versions together.

`STORAGE_EMULATOR_HOST` (e.g. `http://127.0.0.1:4443` for fake-gcs-server) is honoured by the
client library, with anonymous credentials. Options: `project`, `endpoint` (an API endpoint
overriding the default), `anonymous` (no credentials), `upload_chunk_size`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as google_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage  # type: ignore[attr-defined]  # untyped namespace package

from cmms.storage.base import MIB, BlobStore, take_front
from cmms.storage.errors import BlobNotFoundError, BlobStoreError, UnsupportedBlobStoreUrlError
from cmms.storage.url import BlobStoreUrl

# Every chunk but the last must be a multiple of this (a GCS resumable-upload rule).
UPLOAD_CHUNK_QUANTUM = 256 * 1024
DEFAULT_UPLOAD_CHUNK_SIZE = 8 * MIB
_RESUME_INCOMPLETE = 308
_REQUEST_TIMEOUT_SECONDS = 300.0
# The anonymous client still needs some project string; this is the library's own placeholder.
_NO_PROJECT = "<none>"

T = TypeVar("T")


class GcsBlobStore(BlobStore):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        project: str | None = None,
        endpoint: str | None = None,
        anonymous: bool = False,
        upload_chunk_size: int = DEFAULT_UPLOAD_CHUNK_SIZE,
        client: Any = None,
    ) -> None:
        if upload_chunk_size <= 0 or upload_chunk_size % UPLOAD_CHUNK_QUANTUM:
            raise ValueError(
                f"upload_chunk_size must be a positive multiple of {UPLOAD_CHUNK_QUANTUM}, "
                f"got {upload_chunk_size}"
            )
        self.bucket_name = bucket
        self.prefix = prefix
        self.upload_chunk_size = upload_chunk_size
        self._client = client if client is not None else _make_client(project, endpoint, anonymous)
        self._bucket = self._client.bucket(bucket)

    async def _write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        blob = self._bucket.blob(self.prefix + key)
        session_url: str = await self._call(
            key,
            blob.create_resumable_upload_session,
            content_type="application/octet-stream",
            client=self._client,
        )
        http = requests.Session()
        finished = False
        try:
            buffer = bytearray()
            sent = 0
            async for chunk in chunks:
                buffer += chunk
                # Strictly more than one chunk buffered: the final request must carry data.
                while len(buffer) > self.upload_chunk_size:
                    piece = take_front(buffer, self.upload_chunk_size)
                    await self._call(key, _put_chunk, http, session_url, piece, sent, None)
                    sent += len(piece)
            total = sent + len(buffer)
            await self._call(key, _put_chunk, http, session_url, bytes(buffer), sent, total)
            finished = True
            return total
        finally:
            if not finished:
                await asyncio.shield(asyncio.to_thread(_cancel_session, http, session_url))
            http.close()

    async def _read(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]:
        current = await self._reload(key)
        pinned = self._bucket.blob(self.prefix + key, generation=current.generation)
        size: int = current.size or 0
        for start in range(0, size, chunk_size):
            end = min(start + chunk_size, size) - 1
            chunk: bytes = await self._call(
                key,
                pinned.download_as_bytes,
                start=start,
                end=end,
                raw_download=True,
                checksum=None,
                client=self._client,
            )
            yield chunk

    async def _exists(self, key: str) -> bool:
        try:
            await self._reload(key)
        except BlobNotFoundError:
            return False
        return True

    async def _size(self, key: str) -> int:
        size: int = (await self._reload(key)).size or 0
        return size

    async def _reload(self, key: str) -> Any:
        blob = self._bucket.blob(self.prefix + key)
        await self._call(key, blob.reload, client=self._client)
        return blob

    async def _delete(self, key: str) -> None:
        blob = self._bucket.blob(self.prefix + key)
        with contextlib.suppress(BlobNotFoundError):
            await self._call(key, blob.delete, client=self._client)

    async def _list(self, prefix: str) -> AsyncGenerator[str, None]:
        listing = self._client.list_blobs(self._bucket, prefix=self.prefix + prefix)
        pages = iter(listing.pages)
        while True:
            names = await self._call(prefix, _next_page_names, pages)
            if names is None:
                return
            for name in names:
                yield name[len(self.prefix) :]

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

    async def _call(self, key: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except google_exceptions.NotFound as error:
            raise BlobNotFoundError(key) from error
        except (google_exceptions.GoogleAPIError, requests.RequestException) as error:
            raise BlobStoreError(
                f"GCS request for {key!r} in bucket {self.bucket_name!r} failed: {error}"
            ) from error


def _put_chunk(
    http: requests.Session, session_url: str, piece: bytes, offset: int, total: int | None
) -> None:
    """Send bytes [offset, offset+len(piece)) of the upload; a known `total` finalises it."""
    if piece:
        content_range = (
            f"bytes {offset}-{offset + len(piece) - 1}/{'*' if total is None else total}"
        )
    else:
        content_range = f"bytes */{total}"
    response = http.put(
        session_url,
        data=piece,
        headers={"Content-Range": content_range},
        timeout=_REQUEST_TIMEOUT_SECONDS,
    )
    expected = {_RESUME_INCOMPLETE} if total is None else {200, 201}
    if response.status_code not in expected:
        raise BlobStoreError(
            f"resumable upload chunk ({content_range}) got HTTP {response.status_code}: "
            f"{response.text[:200]}"
        )


def _cancel_session(http: requests.Session, session_url: str) -> None:
    # Best effort: an uncancelled session is invisible anyway and expires after a week.
    with contextlib.suppress(requests.RequestException):
        http.delete(session_url, timeout=_REQUEST_TIMEOUT_SECONDS)


def _next_page_names(pages: Any) -> list[str] | None:
    page = next(pages, None)
    return None if page is None else [blob.name for blob in page]


def _make_client(project: str | None, endpoint: str | None, anonymous: bool) -> Any:
    client_options = {"api_endpoint": endpoint} if endpoint else None
    if anonymous:
        return storage.Client(
            project=project or _NO_PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=client_options,
        )
    return storage.Client(project=project, client_options=client_options)


def open_gcs_store(url: BlobStoreUrl) -> GcsBlobStore:
    """`gs://bucket[/prefix]?project=…&endpoint=…&anonymous&upload_chunk_size=…`."""
    url.reject_unknown_options({"project", "endpoint", "anonymous", "upload_chunk_size"})
    bucket, prefix = url.bucket_and_prefix()
    try:
        chunk_size = int(url.options.get("upload_chunk_size", DEFAULT_UPLOAD_CHUNK_SIZE))
    except ValueError as error:
        raise UnsupportedBlobStoreUrlError(f"{url.url!r}: {error}") from error
    return GcsBlobStore(
        bucket,
        prefix,
        project=url.options.get("project"),
        endpoint=url.options.get("endpoint"),
        anonymous=url.flag("anonymous"),
        upload_chunk_size=chunk_size,
    )
