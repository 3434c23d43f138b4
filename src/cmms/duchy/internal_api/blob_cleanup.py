"""Deleting a computation's blobs (duchy_internals §2.3 DeleteComputation/PurgeComputations).

Blobs go *before* the database rows, so a failure leaves the rows (and a retry finds the
computation again) instead of orphaning blobs nobody references any more. Besides the recorded
paths, everything under the computation's deterministic key prefixes is removed: that also
catches a blob written by a peer or an EDP whose recording never happened.
"""

from __future__ import annotations

from collections.abc import Iterable

from cmms.duchy.db import DeletedComputation
from cmms.storage import BlobStore, computation_store, requisition_store


class BlobCleanup:
    def __init__(self, store: BlobStore) -> None:
        self._computations = computation_store(store)
        self._requisitions = requisition_store(store)

    async def delete_blobs(self, found: Iterable[DeletedComputation]) -> None:
        for computation in found:
            for path in computation.computation_blob_paths:
                await self._computations.delete(path)
            for path in computation.requisition_blob_paths:
                await self._requisitions.delete(path)
            if computation.global_computation_id:
                await self._delete_under(computation.global_computation_id)

    async def _delete_under(self, global_id: str) -> None:
        for view in (self._computations, self._requisitions):
            keys = [key async for key in view.list(f"{global_id}/")]
            for key in keys:
                await view.delete(key)
