"""Store views: database paths in, prefixed physical keys out."""

from __future__ import annotations

import pytest

from cmms.storage import (
    BlobNotFoundError,
    ComputationBlobKey,
    InvalidBlobKeyError,
    PrefixedBlobStore,
    RequisitionBlobKey,
    computation_store,
    open_blob_store,
    requisition_store,
)
from cmms.storage.memory import MemoryBlobStore


async def test_database_paths_map_to_physical_keys() -> None:
    inner = open_blob_store("memory://")
    blob = ComputationBlobKey("g1", "WAIT_SETUP_PHASE_INPUTS", 0)
    requisition = RequisitionBlobKey("g1", "r1")
    await computation_store(inner).write_bytes(blob.path, b"stage data")
    await requisition_store(inner).write_bytes(requisition.path, b"sketch")
    assert [key async for key in inner.list()] == [blob.key, requisition.key]
    assert await inner.read_bytes(blob.key) == b"stage data"
    assert [key async for key in computation_store(inner).list("g1/")] == [blob.path]


async def test_missing_blob_is_reported_under_the_views_key() -> None:
    view = computation_store(open_blob_store("memory://"))
    with pytest.raises(BlobNotFoundError) as from_read:
        await view.read_bytes("g/SETUP/0")
    with pytest.raises(BlobNotFoundError) as from_size:
        await view.size("g/SETUP/0")
    assert from_read.value.key == from_size.value.key == "g/SETUP/0"


@pytest.mark.parametrize("prefix", ["computations", "/abs/", "../", "a//"])
def test_view_prefix_must_be_a_key_ending_in_a_slash(prefix: str) -> None:
    with pytest.raises(InvalidBlobKeyError):
        PrefixedBlobStore(open_blob_store("memory://"), prefix)


class _CloseRecordingStore(MemoryBlobStore):
    closed = False

    async def close(self) -> None:
        self.closed = True


async def test_closing_a_view_does_not_close_the_inner_store() -> None:
    inner = _CloseRecordingStore()
    async with computation_store(inner) as view:
        await view.write_bytes("g/SETUP/0", b"x")
    assert not inner.closed
    assert await inner.read_bytes("computations/g/SETUP/0") == b"x"
