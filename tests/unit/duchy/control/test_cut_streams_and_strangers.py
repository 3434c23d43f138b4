"""Bad input at ComputationControl over real mTLS: a body stream cut half-way by the sender, and
a sender whose certificate comes from an unknown root. Neither may leave anything visible or move
the computation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from cmms.api.system.v1 import computation_control_pb2, computation_control_pb2_grpc
from cmms.common.grpc import ClientTls, secure_channel
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.duchy.deployable import DuchyDeployable
from cmms.storage.filesystem import PARTIAL_SUFFIX
from cmms.testing.duchy_fixtures import ChannelOpener
from cmms.testing.duchy_stack import ComputationDriver, stage_of
from cmms.testing.pki import untrusted_pki

from .test_computation_control import REGISTER, llv2_header, stored, stream

__all__ = ["untrusted_pki"]

pb = computation_control_pb2
Stub = computation_control_pb2_grpc.ComputationControlStub
# Generous: only reached if the server never starts or never cleans up, which is the failure.
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


async def test_a_body_cut_half_way_leaves_nothing_and_a_resend_succeeds(
    driver: ComputationDriver,
    computation_control: DuchyDeployable,
    channel_to: ChannelOpener,
    blob_root: Path,
) -> None:
    before = await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    stub = Stub(channel_to(computation_control.ports.grpc, Principal.duchy("worker1")))

    call = stub.AdvanceComputation()
    await call.write(pb.AdvanceComputationRequest(header=llv2_header("c1")))
    half = pb.AdvanceComputationRequest.BodyChunk(partial_data=b"\x05" * (REGISTER * 10 + 50))
    await call.write(pb.AdvanceComputationRequest(body_chunk=half))
    # The server is streaming the body into a hidden partial file; now the sender goes away.
    await eventually(lambda: bool(partial_files(blob_root)), "the upload to start")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await eventually(lambda: not partial_files(blob_root), "the partial file to be removed")

    assert stored(blob_root) == {}
    after = await driver.get("c1")
    assert after.version == before.version
    assert stage_of(after) == stage_of(before)
    assert [b.path for b in after.blobs] == [b.path for b in before.blobs]

    # The sender's retry is taken as if the cut stream never happened.
    body = b"\x06" * (REGISTER * 3)
    await stub.AdvanceComputation(stream(llv2_header("c1"), body[:100], body[100:]))
    assert stored(blob_root) == {"computations/c1/WAIT_SETUP_PHASE_INPUTS/0": body}
    assert (await driver.get("c1")).blobs[0].path == "c1/WAIT_SETUP_PHASE_INPUTS/0"


async def test_a_duchy_certificate_from_an_unknown_root_is_refused_at_the_handshake(
    driver: ComputationDriver,
    computation_control: DuchyDeployable,
    dev_pki: PkiLayout,
    untrusted_pki: PkiLayout,
    blob_root: Path,
) -> None:
    before = await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    # A stranger holding a "worker1" certificate issued by a root nobody configured.
    stranger = untrusted_pki.party(Principal.duchy("worker1"))
    tls = ClientTls(stranger.tls_cert, stranger.tls_key, dev_pki.all_root_certs)
    async with secure_channel(f"127.0.0.1:{computation_control.ports.grpc}", tls) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await Stub(channel).AdvanceComputation(
                stream(llv2_header("c1"), b"\x00" * REGISTER), timeout=CONDITION_TIMEOUT_SECONDS
            )
    assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)
    assert stored(blob_root) == {}
    assert (await driver.get("c1")).version == before.version
