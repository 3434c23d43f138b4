"""An EDP's FulfillRequisition stream cut half-way over real mTLS: nothing becomes visible, the
requisition stays unfulfilled, the Kingdom hears nothing, and the EDP's retry is taken whole."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from cmms.api.public.v1 import requisitions_pb2
from cmms.storage.filesystem import PARTIAL_SUFFIX
from cmms.testing.duchy_stack import ComputationDriver, FakeKingdomRequisitions

from .test_requisition_fulfillment import (
    EDP1,
    NONCE,
    Caller,
    as_caller,
    create,
    header,
    kingdom,
    pb,
    registers,
    stored,
    upload,
)

__all__ = ["as_caller", "kingdom"]  # fixtures

CONDITION_TIMEOUT_SECONDS = 30.0


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait until `condition` holds (observed state, not elapsed time), failing after a bound."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONDITION_TIMEOUT_SECONDS
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def partial_files(blob_root: Path) -> list[Path]:
    return [p for p in blob_root.rglob("*") if p.name.endswith(PARTIAL_SUFFIX)]


async def test_an_upload_cut_half_way_leaves_nothing_and_the_retry_is_taken(
    driver: ComputationDriver,
    as_caller: Caller,
    kingdom: FakeKingdomRequisitions,
    blob_root: Path,
) -> None:
    await create(driver)
    before = await driver.get("c1")
    stub = as_caller(EDP1)

    call = stub.FulfillRequisition()
    await call.write(pb.FulfillRequisitionRequest(header=header()))
    chunk = pb.FulfillRequisitionRequest.BodyChunk(data=b"half of a sketch" * 100)
    await call.write(pb.FulfillRequisitionRequest(body_chunk=chunk))
    await eventually(lambda: bool(partial_files(blob_root)), "the upload to start")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await eventually(lambda: not partial_files(blob_root), "the partial file to be removed")

    assert stored(blob_root) == {}
    assert kingdom.calls == []
    after = await driver.get("c1")
    assert after.version == before.version
    assert after.requisitions[0].path == ""
    assert after.requisitions[0].details.nonce == 0

    reply = await stub.FulfillRequisition(upload(header(), registers(2, 5), registers(1, 6)))
    assert reply.state == requisitions_pb2.Requisition.FULFILLED
    assert stored(blob_root) == {"requisitions/c1/r1": registers(2, 5) + registers(1, 6)}
    assert [r.nonce for _, r in kingdom.calls] == [NONCE]
