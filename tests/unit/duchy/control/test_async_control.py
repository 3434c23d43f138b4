"""AsyncComputationControl: slots by sender and stage, idempotent records, advancing once all
inputs are present, ABORTED while the receiver is elsewhere, bounded retries."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from cmms.api.internal.duchy.v1 import (
    async_computation_control_service_pb2,
    async_computation_control_service_pb2_grpc,
    computation_details_pb2,
    computation_token_pb2,
    computations_service_pb2,
)
from cmms.common.grpc import StatusError
from cmms.common.identity import Principal
from cmms.duchy.control.async_control import AsyncComputationControlServicer, Backoff
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.internal_api.convert import stage_to_proto
from cmms.protocols.stages import AfterTransition
from cmms.testing.duchy_fixtures import ChannelOpener
from cmms.testing.duchy_stack import ComputationDriver, llv2_details, stage_of

pb = async_computation_control_service_pb2
Stub = async_computation_control_service_pb2_grpc.AsyncComputationControlStub
LLV2 = 1
WAIT_SETUP = 5
SETUP_PHASE = 6


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


def metadata_request(
    gid: str, origin: str, stage: int | None = WAIT_SETUP
) -> pb.GetOutputBlobMetadataRequest:
    request = pb.GetOutputBlobMetadataRequest(global_computation_id=gid, data_origin=origin)
    if stage is not None:
        request.computation_stage.CopyFrom(stage_to_proto(LLV2, stage))
    return request


def advance_request(
    gid: str, blob_id: int, path: str, stage: int = WAIT_SETUP
) -> pb.AdvanceComputationRequest:
    return pb.AdvanceComputationRequest(
        global_computation_id=gid,
        computation_stage=stage_to_proto(LLV2, stage),
        blob_id=blob_id,
        blob_path=path,
    )


async def test_output_blob_metadata_by_sender(driver: ComputationDriver, async_stub: Stub) -> None:
    await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    first = await async_stub.GetOutputBlobMetadata(metadata_request("c1", "worker1"))
    second = await async_stub.GetOutputBlobMetadata(metadata_request("c1", "worker2", stage=None))
    assert (first.blob_id, second.blob_id) == (0, 1)
    assert first.dependency_type == computation_details_pb2.OUTPUT and first.path == ""

    stranger = await failure(async_stub.GetOutputBlobMetadata(metadata_request("c1", "worker9")))
    assert stranger.code() == grpc.StatusCode.PERMISSION_DENIED
    unknown = await failure(async_stub.GetOutputBlobMetadata(metadata_request("c0", "worker1")))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    not_a_wait_stage = await failure(
        async_stub.GetOutputBlobMetadata(metadata_request("c1", "worker1", stage=SETUP_PHASE))
    )
    assert not_a_wait_stage.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_output_blob_metadata_while_behind_or_past(
    driver: ComputationDriver, async_stub: Stub
) -> None:
    token = await driver.create(
        "behind", LLV2, llv2_details(1, ["worker1", "worker2", "aggregator"])
    )
    token = await driver.advance(token, LLV2, 2, AfterTransition.DO_NOT_ADD_TO_QUEUE)
    behind = await failure(async_stub.GetOutputBlobMetadata(metadata_request("behind", "worker1")))
    assert behind.code() == grpc.StatusCode.ABORTED
    current_only = await failure(
        async_stub.GetOutputBlobMetadata(metadata_request("behind", "worker1", stage=None))
    )
    assert current_only.code() == grpc.StatusCode.FAILED_PRECONDITION

    await driver.llv2_non_aggregator_at("past", 8)  # EXECUTION_PHASE_ONE
    past = await failure(
        async_stub.GetOutputBlobMetadata(metadata_request("past", "worker1", stage=7))
    )
    assert past.code() == grpc.StatusCode.ALREADY_EXISTS
    wrong_role = await failure(
        async_stub.GetOutputBlobMetadata(metadata_request("past", "worker1"))
    )
    assert wrong_role.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_inputs_are_recorded_idempotently_and_the_last_one_advances(
    driver: ComputationDriver, async_stub: Stub
) -> None:
    await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    await async_stub.AdvanceComputation(advance_request("c1", 0, "c1/WAIT_SETUP_PHASE_INPUTS/0"))
    recorded = await driver.get("c1")
    assert stage_of(recorded) == WAIT_SETUP
    assert recorded.blobs[0].path == "c1/WAIT_SETUP_PHASE_INPUTS/0"

    await async_stub.AdvanceComputation(advance_request("c1", 0, "c1/WAIT_SETUP_PHASE_INPUTS/0"))
    assert (await driver.get("c1")).version == recorded.version  # the resend changed nothing

    different = await failure(async_stub.AdvanceComputation(advance_request("c1", 0, "c1/other")))
    assert different.code() == grpc.StatusCode.FAILED_PRECONDITION
    not_output = await failure(async_stub.AdvanceComputation(advance_request("c1", 7, "c1/x")))
    assert not_output.code() == grpc.StatusCode.FAILED_PRECONDITION

    await async_stub.AdvanceComputation(advance_request("c1", 1, "c1/WAIT_SETUP_PHASE_INPUTS/1"))
    advanced = await driver.get("c1")
    assert stage_of(advanced) == SETUP_PHASE
    assert [(b.dependency_type, b.path) for b in advanced.blobs] == [
        (computation_details_pb2.INPUT, "c1/WAIT_SETUP_PHASE_INPUTS/0"),
        (computation_details_pb2.INPUT, "c1/WAIT_SETUP_PHASE_INPUTS/1"),
        (computation_details_pb2.OUTPUT, ""),
    ]
    assert advanced.HasField("lock_expiration_time")  # queued for the mill

    # A late resend once the receiver moved on is acknowledged and changes nothing.
    await async_stub.AdvanceComputation(advance_request("c1", 1, "c1/WAIT_SETUP_PHASE_INPUTS/1"))
    assert (await driver.get("c1")).version == advanced.version


async def test_advance_errors(driver: ComputationDriver, async_stub: Stub) -> None:
    token = await driver.create("c1", LLV2, llv2_details(1, ["worker1", "worker2", "aggregator"]))
    await driver.advance(token, LLV2, 2, AfterTransition.DO_NOT_ADD_TO_QUEUE)
    behind = await failure(async_stub.AdvanceComputation(advance_request("c1", 0, "c1/p")))
    assert behind.code() == grpc.StatusCode.ABORTED
    unknown = await failure(async_stub.AdvanceComputation(advance_request("c0", 0, "c0/p")))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    no_stage = await failure(
        async_stub.AdvanceComputation(
            pb.AdvanceComputationRequest(global_computation_id="c1", blob_path="p")
        )
    )
    assert no_stage.code() == grpc.StatusCode.INVALID_ARGUMENT
    other_protocol = await failure(
        async_stub.AdvanceComputation(
            pb.AdvanceComputationRequest(
                global_computation_id="c1",
                computation_stage=stage_to_proto(3, 6),
                blob_path="p",
            )
        )
    )
    assert other_protocol.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_racing_inputs_both_succeed_and_advance_once(
    driver: ComputationDriver, async_stub: Stub
) -> None:
    await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    await asyncio.gather(
        async_stub.AdvanceComputation(advance_request("c1", 0, "c1/WAIT_SETUP_PHASE_INPUTS/0")),
        async_stub.AdvanceComputation(advance_request("c1", 1, "c1/WAIT_SETUP_PHASE_INPUTS/1")),
    )
    advanced = await driver.get("c1")
    assert stage_of(advanced) == SETUP_PHASE
    assert [
        b.path for b in advanced.blobs if b.dependency_type == computation_details_pb2.INPUT
    ] == [
        "c1/WAIT_SETUP_PHASE_INPUTS/0",
        "c1/WAIT_SETUP_PHASE_INPUTS/1",
    ]


async def test_only_this_duchy_may_call(
    async_control: DuchyDeployable, channel_to: ChannelOpener
) -> None:
    stub = Stub(channel_to(async_control.ports.grpc, Principal.duchy("worker1")))
    denied = await failure(stub.AdvanceComputation(advance_request("c1", 0, "c1/p")))
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


# ------------------------------------------------------------------------ retries, in process


class FlakyComputations:
    """Serves a WAIT_EXECUTION_PHASE_ONE_INPUTS token; RecordOutputBlobPath fails `failures` times."""

    def __init__(self, failures: int, code: grpc.StatusCode = grpc.StatusCode.ABORTED) -> None:
        self.failures = failures
        self.code = code
        self.advanced: list[computations_service_pb2.AdvanceComputationStageRequest] = []
        self.token = computation_token_pb2.ComputationToken(
            local_computation_id=1,
            global_computation_id="c1",
            computation_stage=stage_to_proto(LLV2, 7),
            version=1,
            computation_details=llv2_details(2, ["worker1", "worker2", "aggregator"]),
            blobs=[
                computation_token_pb2.ComputationStageBlobMetadata(
                    blob_id=0, dependency_type=computation_details_pb2.INPUT, path="c1/in"
                ),
                computation_token_pb2.ComputationStageBlobMetadata(
                    blob_id=1, dependency_type=computation_details_pb2.OUTPUT
                ),
            ],
        )

    async def get_token(self, global_computation_id: str) -> computation_token_pb2.ComputationToken:
        return self.token

    async def record_output_blob_path(
        self, token: computation_token_pb2.ComputationToken, blob_id: int, path: str
    ) -> computation_token_pb2.ComputationToken:
        if self.failures:
            self.failures -= 1
            raise StatusError(self.code, "version raced")
        recorded = computation_token_pb2.ComputationToken()
        recorded.CopyFrom(token)
        recorded.blobs[1].path = path
        return recorded

    async def advance_stage(
        self, request: computations_service_pb2.AdvanceComputationStageRequest
    ) -> computation_token_pb2.ComputationToken:
        self.advanced.append(request)
        return request.token


def servicer_with(
    computations: FlakyComputations, sleeps: list[float], attempts: int
) -> AsyncComputationControlServicer:
    async def record_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return AsyncComputationControlServicer(
        computations,  # type: ignore[arg-type]
        backoff=Backoff(max_attempts=attempts, initial_seconds=0.5, multiplier=1.5),
        sleep=record_sleep,
        jitter=lambda: 0.5,  # the midpoint: no jitter
    )


async def test_retryable_failures_are_retried_with_backoff() -> None:
    computations = FlakyComputations(failures=2)
    sleeps: list[float] = []
    servicer = servicer_with(computations, sleeps, attempts=5)
    await servicer.AdvanceComputation(advance_request("c1", 1, "c1/out", stage=7), None)
    assert sleeps == [0.5, 0.75]
    (advance,) = computations.advanced
    assert advance.input_blobs == ["c1/out"]
    assert advance.next_computation_stage == stage_to_proto(LLV2, 8)
    assert advance.after_transition == AfterTransition.ADD_UNCLAIMED_TO_QUEUE
    assert advance.output_blobs == 1


async def test_exhausted_retries_surface_the_retryable_code() -> None:
    computations = FlakyComputations(failures=10, code=grpc.StatusCode.UNAVAILABLE)
    sleeps: list[float] = []
    servicer = servicer_with(computations, sleeps, attempts=3)
    with pytest.raises(StatusError) as caught:
        await servicer.AdvanceComputation(advance_request("c1", 1, "c1/out", stage=7), None)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(sleeps) == 2
    assert computations.advanced == []


async def test_other_failures_are_not_retried() -> None:
    computations = FlakyComputations(failures=1, code=grpc.StatusCode.FAILED_PRECONDITION)
    sleeps: list[float] = []
    servicer = servicer_with(computations, sleeps, attempts=5)
    with pytest.raises(StatusError) as caught:
        await servicer.AdvanceComputation(advance_request("c1", 1, "c1/out", stage=7), None)
    assert caught.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert sleeps == []
