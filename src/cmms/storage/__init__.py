"""Blob storage: one streamed `BlobStore` interface, backends chosen by URL scheme.

    store = open_blob_store("file:///var/lib/duchy/blobs")   # or memory://, s3://…, gs://…
    await store.write(ComputationBlobKey(gid, "WAIT_SETUP_PHASE_INPUTS", 0).key, chunks)

Cloud SDKs are imported only when a `gs://` or `s3://` store is opened.
"""

from __future__ import annotations

from cmms.storage.base import DEFAULT_READ_CHUNK_SIZE, BlobStore, iterate, split_into_chunks
from cmms.storage.errors import (
    BlobNotFoundError,
    BlobStoreError,
    InvalidBlobKeyError,
    UnsupportedBlobStoreUrlError,
)
from cmms.storage.keys import (
    ComputationBlobKey,
    RequisitionBlobKey,
    computation_store,
    requisition_store,
)
from cmms.storage.prefixed import PrefixedBlobStore
from cmms.storage.registry import open_blob_store, register_backend, supported_schemes
from cmms.storage.validation import validate_key, validate_prefix

__all__ = [
    "DEFAULT_READ_CHUNK_SIZE",
    "BlobNotFoundError",
    "BlobStore",
    "BlobStoreError",
    "ComputationBlobKey",
    "InvalidBlobKeyError",
    "PrefixedBlobStore",
    "RequisitionBlobKey",
    "UnsupportedBlobStoreUrlError",
    "computation_store",
    "iterate",
    "open_blob_store",
    "register_backend",
    "requisition_store",
    "split_into_chunks",
    "supported_schemes",
    "validate_key",
    "validate_prefix",
]
