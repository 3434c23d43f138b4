"""`s3://bucket[/prefix]`: Amazon S3 or any S3-compatible server (SeaweedFS, MinIO, Ceph) via boto3.

boto3 is synchronous, so every call runs in a worker thread. A write is a single `PutObject` when
the blob fits in one part, otherwise a multipart upload that only `CompleteMultipartUpload` makes
visible and that is aborted if the write fails. (An abort that itself fails leaves an invisible
upload behind; production buckets should carry an AbortIncompleteMultipartUpload lifecycle rule.)

Connection settings come from explicit options, else boto3's usual sources: `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_PROFILE`,
`AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL`, instance roles.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cmms.storage.base import MIB, BlobStore, take_front
from cmms.storage.errors import BlobNotFoundError, BlobStoreError, UnsupportedBlobStoreUrlError
from cmms.storage.url import BlobStoreUrl

# S3 refuses parts below 5 MiB (except the last one).
MIN_PART_SIZE = 5 * MIB
DEFAULT_PART_SIZE = 8 * MIB
# Used only when nothing else names a region: S3-compatible servers accept any, SigV4 needs one.
FALLBACK_REGION = "us-east-1"
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

T = TypeVar("T")


class S3BlobStore(BlobStore):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        max_connections: int = 16,
        client: Any = None,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes, got {part_size}")
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self._client = (
            client
            if client is not None
            else _make_client(
                endpoint_url=endpoint_url,
                region=region,
                access_key_id=access_key_id,
                secret_access_key=secret_access_key,
                session_token=session_token,
                max_connections=max_connections,
            )
        )

    async def _write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        full_key = self.prefix + key
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        total = 0
        try:
            async for chunk in chunks:
                buffer += chunk
                total += len(chunk)
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        created = await self._call(
                            key,
                            self._client.create_multipart_upload,
                            Bucket=self.bucket,
                            Key=full_key,
                        )
                        upload_id = created["UploadId"]
                    part = take_front(buffer, self.part_size)
                    parts.append(await self._upload_part(key, upload_id, len(parts) + 1, part))
            if upload_id is None:
                await self._call(
                    key,
                    self._client.put_object,
                    Bucket=self.bucket,
                    Key=full_key,
                    Body=bytes(buffer),
                )
                return total
            if buffer:
                parts.append(await self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            await self._call(
                key,
                self._client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=full_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
            return total
        except BaseException:
            if upload_id is not None:
                await asyncio.shield(self._abort(full_key, upload_id))
            raise

    async def _upload_part(
        self, key: str, upload_id: str, number: int, body: bytes
    ) -> dict[str, Any]:
        response = await self._call(
            key,
            self._client.upload_part,
            Bucket=self.bucket,
            Key=self.prefix + key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
        )
        return {"PartNumber": number, "ETag": response["ETag"]}

    async def _abort(self, full_key: str, upload_id: str) -> None:
        # The write's own error is what the caller needs to see, not a failed clean-up.
        with contextlib.suppress(ClientError, BotoCoreError):
            await asyncio.to_thread(
                self._client.abort_multipart_upload,
                Bucket=self.bucket,
                Key=full_key,
                UploadId=upload_id,
            )

    async def _read(self, key: str, chunk_size: int) -> AsyncGenerator[bytes, None]:
        response = await self._call(
            key, self._client.get_object, Bucket=self.bucket, Key=self.prefix + key
        )
        body = response["Body"]
        try:
            while True:
                chunk = await self._call(key, body.read, chunk_size)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def _exists(self, key: str) -> bool:
        try:
            await self._head(key)
        except BlobNotFoundError:
            return False
        return True

    async def _size(self, key: str) -> int:
        size: int = (await self._head(key))["ContentLength"]
        return size

    async def _head(self, key: str) -> dict[str, Any]:
        response: dict[str, Any] = await self._call(
            key, self._client.head_object, Bucket=self.bucket, Key=self.prefix + key
        )
        return response

    async def _delete(self, key: str) -> None:
        await self._call(key, self._client.delete_object, Bucket=self.bucket, Key=self.prefix + key)

    async def _list(self, prefix: str) -> AsyncGenerator[str, None]:
        pages = iter(
            self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
        )
        while True:
            page = await self._call(prefix, next, pages, None)
            if page is None:
                return
            for entry in page.get("Contents", []):
                yield entry["Key"][len(self.prefix) :]

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)

    async def _call(self, key: str, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND_CODES:
                raise BlobNotFoundError(key) from error
            raise BlobStoreError(
                f"S3 request for {key!r} in bucket {self.bucket!r} failed: {error}"
            ) from error
        except BotoCoreError as error:
            raise BlobStoreError(
                f"S3 request for {key!r} in bucket {self.bucket!r} failed: {error}"
            ) from error


def _make_client(
    *,
    endpoint_url: str | None,
    region: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    session_token: str | None,
    max_connections: int,
) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        region_name=region,
    )
    endpoint_url = (
        endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    )
    s3_config = {"addressing_style": "path"} if endpoint_url else {}
    config = Config(
        max_pool_connections=max_connections,
        retries={"mode": "standard"},
        s3=s3_config,
    )
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=session.region_name or FALLBACK_REGION,
        config=config,
    )


_OPTIONS = {
    "endpoint_url",
    "region",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "part_size",
    "max_connections",
}


def open_s3_store(url: BlobStoreUrl) -> S3BlobStore:
    """`s3://bucket[/prefix]?endpoint_url=…&region=…&part_size=…` (options may also be given
    as keyword arguments to `open_blob_store`)."""
    url.reject_unknown_options(_OPTIONS)
    bucket, prefix = url.bucket_and_prefix()
    options = dict(url.options)
    try:
        part_size = int(options.pop("part_size", DEFAULT_PART_SIZE))
        max_connections = int(options.pop("max_connections", 16))
    except ValueError as error:
        raise UnsupportedBlobStoreUrlError(f"{url.url!r}: {error}") from error
    return S3BlobStore(
        bucket,
        prefix,
        endpoint_url=options.get("endpoint_url"),
        region=options.get("region"),
        access_key_id=options.get("access_key_id"),
        secret_access_key=options.get("secret_access_key"),
        session_token=options.get("session_token"),
        part_size=part_size,
        max_connections=max_connections,
    )
