"""Blob I/O of a stage: inputs and requisition data in, the stage output out.

Paths are the database's prefix-less form; the computation and requisition store views add the
prefixes. Output keys are deterministic (`{gid}/{STAGE}/{blob_id}`), so a retried write lands on
the same key. A storage failure while writing is worth a retry; a missing input is not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from cmms.duchy.mill.errors import PermanentError, TransientError
from cmms.storage import (
    BlobNotFoundError,
    BlobStore,
    BlobStoreError,
    ComputationBlobKey,
    computation_store,
    iterate,
    requisition_store,
    split_into_chunks,
)

MIB = 1024 * 1024
WRITE_CHUNK_SIZE = 4 * MIB


class StageBlobs:
    def __init__(self, store: BlobStore) -> None:
        self._computations = computation_store(store)
        self._requisitions = requisition_store(store)

    @staticmethod
    def output_path(global_id: str, stage_name: str, blob_id: int) -> str:
        return ComputationBlobKey(global_id, stage_name, blob_id).path

    async def exists(self, path: str) -> bool:
        try:
            return await self._computations.exists(path)
        except (BlobStoreError, OSError) as error:
            raise TransientError(f"cannot look up stage blob {path}: {error}") from error

    async def read_computation_blob(self, path: str) -> bytes:
        return await _read(self._computations, path, "stage blob")

    async def read_requisition(self, path: str) -> bytes:
        return await _read(self._requisitions, path, "requisition blob")

    async def stream_requisition(self, path: str) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._requisitions.read(path):
                yield chunk
        except BlobNotFoundError as error:
            raise PermanentError(f"requisition blob {path} is missing") from error
        except (BlobStoreError, OSError) as error:
            raise TransientError(f"cannot read requisition blob {path}: {error}") from error

    async def write_output(self, path: str, data: bytes | bytearray) -> None:
        try:
            await self._computations.write(path, iterate(split_into_chunks(data, WRITE_CHUNK_SIZE)))
        except (BlobStoreError, OSError) as error:
            raise TransientError(f"cannot write stage output {path}: {error}") from error


async def _read(store: BlobStore, path: str, what: str) -> bytes:
    try:
        return await store.read_bytes(path)
    except BlobNotFoundError as error:
        # A recorded path whose blob is gone will not come back by retrying.
        raise PermanentError(f"{what} {path} is missing") from error
    except (BlobStoreError, OSError) as error:
        raise TransientError(f"cannot read {what} {path}: {error}") from error
