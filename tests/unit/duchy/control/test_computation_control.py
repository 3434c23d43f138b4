"""The peer-facing ComputationControl server, with the internal API and async control behind
it, over real mTLS: who may send, header and body checks, storage, idempotent resends."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from cmms.api.system.v1 import computation_control_pb2, computation_control_pb2_grpc
from cmms.common.identity import Principal
from cmms.duchy.deployable import DuchyDeployable
from cmms.protocols.stages import AfterTransition
from cmms.testing.duchy_fixtures import TEST_MAX_PAYLOAD_BYTES, ChannelOpener
from cmms.testing.duchy_stack import (
    ComputationDriver,
    hmss_details,
    llv2_details,
    peer_blobs_stage_details,
    stage_of,
)

pb = computation_control_pb2
Header = pb.AdvanceComputationRequest.Header
Stub = computation_control_pb2_grpc.ComputationControlStub
PeerStub = Callable[[str], Stub]
REGISTER = 198
SETUP_INPUT = Header.LiquidLegionsV2.SETUP_PHASE_INPUT


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


@pytest.fixture
def as_peer(computation_control: DuchyDeployable, channel_to: ChannelOpener) -> PeerStub:
    def stub(duchy: str = "worker1") -> Stub:
        principal = Principal.duchy(duchy) if duchy != "edp1" else Principal.data_provider("edp1")
        return Stub(channel_to(computation_control.ports.grpc, principal))

    return stub


def llv2_header(gid: str, description: int = SETUP_INPUT) -> Header:
    return Header(
        name=f"computations/{gid}",
        liquid_legions_v2=Header.LiquidLegionsV2(description=description),  # type: ignore[arg-type]
    )


def stream(header: Header | None, *chunks: bytes) -> Iterator[pb.AdvanceComputationRequest]:
    if header is not None:
        yield pb.AdvanceComputationRequest(header=header)
    for chunk in chunks:
        yield pb.AdvanceComputationRequest(
            body_chunk=pb.AdvanceComputationRequest.BodyChunk(partial_data=chunk)
        )


def stored(blob_root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(blob_root).as_posix(): p.read_bytes()
        for p in blob_root.rglob("*")
        if p.is_file()
    }


async def test_setup_inputs_are_stored_and_the_last_one_advances(
    driver: ComputationDriver, as_peer: PeerStub, blob_root: Path
) -> None:
    await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    body = bytes(range(198)) * 3
    await as_peer("worker1").AdvanceComputation(stream(llv2_header("c1"), body[:250], body[250:]))
    assert stored(blob_root) == {"computations/c1/WAIT_SETUP_PHASE_INPUTS/0": body}
    token = await driver.get("c1")
    assert stage_of(token) == 5
    assert token.blobs[0].path == "c1/WAIT_SETUP_PHASE_INPUTS/0"

    await as_peer("worker2").AdvanceComputation(stream(llv2_header("c1"), b"\x07" * REGISTER))
    advanced = await driver.get("c1")
    assert stage_of(advanced) == 6  # SETUP_PHASE
    assert [b.path for b in advanced.blobs][:2] == [
        "c1/WAIT_SETUP_PHASE_INPUTS/0",
        "c1/WAIT_SETUP_PHASE_INPUTS/1",
    ]
    assert stored(blob_root)["computations/c1/WAIT_SETUP_PHASE_INPUTS/1"] == b"\x07" * REGISTER


async def test_resends_are_idempotent_and_late_ones_rewrite_nothing(
    driver: ComputationDriver, as_peer: PeerStub, blob_root: Path
) -> None:
    await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    worker1 = as_peer("worker1")
    body = b"\x01" * (2 * REGISTER)
    await worker1.AdvanceComputation(stream(llv2_header("c1"), body))
    version = (await driver.get("c1")).version
    await worker1.AdvanceComputation(stream(llv2_header("c1"), body))
    assert (await driver.get("c1")).version == version
    assert stored(blob_root) == {"computations/c1/WAIT_SETUP_PHASE_INPUTS/0": body}

    await as_peer("worker2").AdvanceComputation(stream(llv2_header("c1"), body))
    advanced = await driver.get("c1")
    await worker1.AdvanceComputation(stream(llv2_header("c1"), b"\x02" * REGISTER))
    assert (await driver.get("c1")).version == advanced.version
    assert stored(blob_root)["computations/c1/WAIT_SETUP_PHASE_INPUTS/0"] == body


async def test_receiver_not_yet_waiting_answers_aborted(
    driver: ComputationDriver, as_peer: PeerStub, blob_root: Path
) -> None:
    token = await driver.create("c1", 1, llv2_details(1, ["worker1", "worker2", "aggregator"]))
    await driver.advance(token, 1, 2, AfterTransition.DO_NOT_ADD_TO_QUEUE)
    early = await failure(
        as_peer("worker1").AdvanceComputation(stream(llv2_header("c1"), b"\x00" * REGISTER))
    )
    assert early.code() == grpc.StatusCode.ABORTED
    await driver.llv2_aggregator_waiting_for_setup_inputs("c2")
    future_input = await failure(
        as_peer("worker2").AdvanceComputation(
            stream(
                llv2_header("c2", Header.LiquidLegionsV2.EXECUTION_PHASE_ONE_INPUT),
                b"\x00" * REGISTER,
            )
        )
    )
    assert future_input.code() == grpc.StatusCode.ABORTED
    assert stored(blob_root) == {}


async def test_unknown_computation_is_not_found(
    computation_control: DuchyDeployable, as_peer: PeerStub
) -> None:
    unknown = await failure(
        as_peer("worker1").AdvanceComputation(stream(llv2_header("nope"), b"\x00" * REGISTER))
    )
    assert unknown.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "messages",
    [
        pytest.param([], id="empty stream"),
        pytest.param(list(stream(None, b"\x00" * REGISTER)), id="body before header"),
        pytest.param(
            list(
                stream(
                    Header(
                        name="computation/c1",
                        liquid_legions_v2=Header.LiquidLegionsV2(description=SETUP_INPUT),
                    ),
                    b"x",
                )
            ),
            id="bad name",
        ),
        pytest.param(list(stream(Header(name="computations/c1"), b"x")), id="no protocol"),
        pytest.param(list(stream(llv2_header("c1", 0), b"x")), id="unspecified description"),
        pytest.param(list(stream(llv2_header("c1", 9), b"x")), id="unknown description"),
        pytest.param(
            list(
                stream(
                    Header(
                        name="computations/c1",
                        reach_only_liquid_legions_v2=Header.ReachOnlyLiquidLegionsV2(description=1),  # type: ignore[arg-type]
                    ),
                    b"\x00" * 66,
                )
            ),
            id="other protocol",
        ),
        pytest.param(list(stream(llv2_header("c1"))), id="no body"),
        pytest.param(
            list(stream(llv2_header("c1"), b"\x00" * 100, b"\x00" * 97)), id="partial record"
        ),
        pytest.param(
            [
                *stream(llv2_header("c1"), b"\x00" * REGISTER),
                pb.AdvanceComputationRequest(header=llv2_header("c1")),
            ],
            id="second header",
        ),
    ],
)
async def test_malformed_requests_are_invalid_and_store_nothing(
    driver: ComputationDriver,
    as_peer: PeerStub,
    blob_root: Path,
    messages: list[pb.AdvanceComputationRequest],
) -> None:
    await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    error = await failure(as_peer("worker1").AdvanceComputation(iter(messages)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stored(blob_root) == {}
    assert (await driver.get("c1")).blobs[0].path == ""


async def test_input_this_duchy_never_waits_for_is_invalid(
    driver: ComputationDriver, as_peer: PeerStub
) -> None:
    await driver.llv2_non_aggregator_at("n1", 4)
    error = await failure(
        as_peer("worker2").AdvanceComputation(stream(llv2_header("n1"), b"\x00" * REGISTER))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_oversized_bodies_are_refused_and_store_nothing(
    driver: ComputationDriver, as_peer: PeerStub, blob_root: Path
) -> None:
    await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    records_per_chunk = 1000
    chunks = (TEST_MAX_PAYLOAD_BYTES // (REGISTER * records_per_chunk)) + 1
    error = await failure(
        as_peer("worker1").AdvanceComputation(
            stream(llv2_header("c1"), *[b"\x00" * (REGISTER * records_per_chunk)] * chunks)
        )
    )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stored(blob_root) == {}


async def test_only_participants_may_send(
    driver: ComputationDriver, as_peer: PeerStub, blob_root: Path
) -> None:
    await driver.llv2_aggregator_waiting_for_setup_inputs(
        "c1", participants=("worker1", "aggregator")
    )
    outsider = await failure(
        as_peer("worker2").AdvanceComputation(stream(llv2_header("c1"), b"\x00" * REGISTER))
    )
    assert outsider.code() == grpc.StatusCode.PERMISSION_DENIED
    edp = await failure(
        as_peer("edp1").AdvanceComputation(stream(llv2_header("c1"), b"\x00" * REGISTER))
    )
    assert edp.code() == grpc.StatusCode.PERMISSION_DENIED
    assert stored(blob_root) == {}


async def test_hmss_aggregation_inputs(
    driver: ComputationDriver, as_peer: PeerStub, blob_root: Path
) -> None:
    token = await driver.create("h1", 3, hmss_details(1))
    await driver.advance(
        token,
        3,
        6,
        AfterTransition.DO_NOT_ADD_TO_QUEUE,
        outputs=2,
        stage_details=peer_blobs_stage_details(3, ["worker1", "worker2"]),
    )
    header = Header(
        name="computations/h1",
        honest_majority_share_shuffle=Header.HonestMajorityShareShuffle(
            description=Header.HonestMajorityShareShuffle.AGGREGATION_PHASE_INPUT
        ),
    )
    await as_peer("worker2").AdvanceComputation(stream(header, b"share-2"))
    await as_peer("worker1").AdvanceComputation(stream(header, b"share-1"))
    assert stage_of(await driver.get("h1")) == 8  # AGGREGATION_PHASE
    assert stored(blob_root) == {
        "computations/h1/WAIT_ON_AGGREGATION_INPUT/0": b"share-1",
        "computations/h1/WAIT_ON_AGGREGATION_INPUT/1": b"share-2",
    }


def stage_request(gid: str, duchy: str = "aggregator") -> pb.GetComputationStageRequest:
    return pb.GetComputationStageRequest(
        name=f"computations/{gid}/participants/{duchy}/computationStage"
    )


async def test_get_computation_stage(driver: ComputationDriver, as_peer: PeerStub) -> None:
    token = await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    worker1 = as_peer("worker1")
    reply = await worker1.GetComputationStage(stage_request("c1"))
    assert reply.name == "computations/c1/participants/aggregator/computationStage"
    assert (
        reply.liquid_legions_v2.stage == pb.ComputationStage.LiquidLegionsV2.WAIT_SETUP_PHASE_INPUTS
    )
    digest = hashlib.sha256(token.version.to_bytes(8, "big")).hexdigest().upper()
    assert reply.etag == f'W/"{digest}"'

    await worker1.AdvanceComputation(stream(llv2_header("c1"), b"\x00" * REGISTER))
    after = await worker1.GetComputationStage(stage_request("c1"))
    assert after.etag != reply.etag

    other_duchy = await failure(worker1.GetComputationStage(stage_request("c1", "worker2")))
    assert other_duchy.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad_name = await failure(worker1.GetComputationStage(pb.GetComputationStageRequest(name="c1")))
    assert bad_name.code() == grpc.StatusCode.INVALID_ARGUMENT
    unknown = await failure(worker1.GetComputationStage(stage_request("nope")))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND

    await driver.llv2_aggregator_waiting_for_setup_inputs(
        "c2", participants=("worker1", "aggregator")
    )
    outsider = await failure(as_peer("worker2").GetComputationStage(stage_request("c2")))
    assert outsider.code() == grpc.StatusCode.PERMISSION_DENIED
