"""The BlobStore conformance suite on every backend: file, memory, S3 (SeaweedFS), GCS (fake)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cmms.storage import BlobStore, PrefixedBlobStore, open_blob_store
from cmms.storage.gcs import UPLOAD_CHUNK_QUANTUM
from cmms.storage.s3 import MIN_PART_SIZE
from cmms.testing.conformance.blob_store import BlobStoreConformance
from cmms.testing.servers import GcsTestServer, S3TestServer


def _object_store_url(request: pytest.FixtureRequest, backend: str) -> tuple[str, dict[str, str]]:
    # A fresh prefix per test keeps tests independent on the one session-wide bucket.
    prefix = f"conformance/{uuid.uuid4().hex}"
    if backend == "s3":
        s3: S3TestServer = request.getfixturevalue("seaweedfs")
        # The smallest legal part size, so the suite's blobs span several parts.
        return s3.url(prefix), {**s3.store_options(), "part_size": str(MIN_PART_SIZE)}
    gcs: GcsTestServer = request.getfixturevalue("fake_gcs")
    options = {**gcs.store_options(), "upload_chunk_size": str(4 * UPLOAD_CHUNK_QUANTUM)}
    return gcs.url(prefix), options


async def _view_beside_a_neighbour() -> BlobStore:
    # The neighbour's blobs share the inner store; the suite's exact listings prove they stay unseen.
    inner = open_blob_store("memory://")
    await inner.write_bytes("computations-other/k", b"neighbour")
    await inner.write_bytes("computation", b"neighbour")
    return PrefixedBlobStore(inner, "computations/")


class TestBlobStoreConformance(BlobStoreConformance):
    @pytest.fixture(params=["file", "memory", "prefixed-view", "s3", "gs"])
    async def store(
        self, request: pytest.FixtureRequest, tmp_path: Path
    ) -> AsyncIterator[BlobStore]:
        backend: str = request.param
        if backend == "file":
            url, options = f"file://{tmp_path / 'blobs'}", {}
        elif backend == "memory":
            url, options = "memory://", {}
        elif backend == "prefixed-view":
            yield await _view_beside_a_neighbour()
            return
        else:
            url, options = _object_store_url(request, backend)
        store = open_blob_store(url, **options)
        try:
            yield store
        finally:
            async for key in store.list():
                await store.delete(key)
            await store.close()
