"""The internal Computations service over real mTLS: conversions, statuses, blob deletion."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
)
from cmms.common.identity import Principal
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.internal_api.convert import stage_to_proto
from cmms.duchy.internal_api.errors import error_reason
from cmms.protocols.stages import AfterTransition
from cmms.testing.duchy_fixtures import ChannelOpener
from cmms.testing.duchy_stack import ComputationDriver, hmss_details, llv2_details, stage_of

pb = computations_service_pb2
LLV2 = 1
FINGERPRINT = b"\x01" * 32


def requisition(
    req_id: str, nonce_hash: bytes = b"h" * 32
) -> computation_details_pb2.RequisitionEntry:
    return computation_details_pb2.RequisitionEntry(
        key=computation_details_pb2.ExternalRequisitionKey(
            external_requisition_id=req_id, requisition_fingerprint=FINGERPRINT
        ),
        value=computation_details_pb2.RequisitionDetails(nonce_hash=nonce_hash),
    )


async def failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_create_then_get_by_global_id_and_by_requisition_key(
    driver: ComputationDriver,
) -> None:
    created = await driver.create(
        "c1", LLV2, llv2_details(1, ["worker1", "aggregator"]), [requisition("r1")]
    )
    assert created.local_computation_id != 0
    assert stage_of(created) == 1  # INITIALIZATION_PHASE
    assert created.computation_details.liquid_legions_v2.participants[0].duchy_id == "worker1"
    assert created.requisitions[0].external_key.external_requisition_id == "r1"
    assert created.HasField("lock_expiration_time")  # claimable at once

    by_key = await driver.stub.GetComputationToken(
        pb.GetComputationTokenRequest(requisition_key=created.requisitions[0].external_key)
    )
    assert by_key.token == created
    assert await driver.get("c1") == created


async def test_create_errors(driver: ComputationDriver) -> None:
    await driver.create("c1", LLV2, llv2_details(1, []), [requisition("r1")])
    duplicate = await failure(driver.create("c1", LLV2, llv2_details(1, [])))
    assert duplicate.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_reason(duplicate) == "COMPUTATION_ALREADY_EXISTS"
    taken_key = await failure(driver.create("c2", LLV2, llv2_details(1, []), [requisition("r1")]))
    assert taken_key.code() == grpc.StatusCode.ALREADY_EXISTS
    wrong_details = await failure(driver.create("c3", LLV2, hmss_details(1)))
    assert wrong_details.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad_initial = await failure(
        driver.stub.CreateComputation(
            pb.CreateComputationRequest(
                computation_type=LLV2,
                global_computation_id="c4",
                computation_stage=stage_to_proto(LLV2, 5),
            )
        )
    )
    assert bad_initial.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_reason(bad_initial) == "COMPUTATION_INITIAL_STAGE_INVALID"
    no_type = await failure(
        driver.stub.CreateComputation(pb.CreateComputationRequest(global_computation_id="c5"))
    )
    assert no_type.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_get_token_errors(driver: ComputationDriver) -> None:
    unknown = await failure(driver.get("nope"))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert error_reason(unknown) == "COMPUTATION_NOT_FOUND"
    no_key = await failure(driver.stub.GetComputationToken(pb.GetComputationTokenRequest()))
    assert no_key.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "caller", [Principal.duchy("worker1"), Principal.data_provider("edp1"), Principal.kingdom()]
)
async def test_only_this_duchy_may_call(
    internal_api: DuchyDeployable, channel_to: ChannelOpener, caller: Principal
) -> None:
    stub = computations_service_pb2_grpc.ComputationsStub(
        channel_to(internal_api.ports.grpc, caller)
    )
    denied = await failure(
        stub.GetComputationToken(pb.GetComputationTokenRequest(global_computation_id="c1"))
    )
    assert denied.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_update_details_and_stale_token(driver: ComputationDriver) -> None:
    token = await driver.create("c1", LLV2, llv2_details(1, []), [requisition("r1")])
    new_details = llv2_details(1, ["worker1", "worker2", "aggregator"])
    updated = (
        await driver.stub.UpdateComputationDetails(
            pb.UpdateComputationDetailsRequest(
                token=token,
                details=new_details,
                requisitions=[requisition("r1", nonce_hash=b"n" * 32)],
            )
        )
    ).token
    assert updated.version > token.version
    assert updated.computation_details == new_details
    assert updated.requisitions[0].details.nonce_hash == b"n" * 32

    stale = await failure(
        driver.stub.UpdateComputationDetails(
            pb.UpdateComputationDetailsRequest(token=token, details=new_details)
        )
    )
    assert stale.code() == grpc.StatusCode.ABORTED
    assert error_reason(stale) == "COMPUTATION_TOKEN_VERSION_MISMATCH"
    other_protocol = await failure(
        driver.stub.UpdateComputationDetails(
            pb.UpdateComputationDetailsRequest(token=updated, details=hmss_details(1))
        )
    )
    assert other_protocol.code() == grpc.StatusCode.INVALID_ARGUMENT
    unknown_requisition = await failure(
        driver.stub.UpdateComputationDetails(
            pb.UpdateComputationDetailsRequest(
                token=updated, details=new_details, requisitions=[requisition("r9")]
            )
        )
    )
    assert unknown_requisition.code() == grpc.StatusCode.NOT_FOUND


async def test_claim_work_locks_the_oldest_computation(driver: ComputationDriver) -> None:
    empty = await driver.stub.ClaimWork(pb.ClaimWorkRequest(computation_type=LLV2, owner="mill-1"))
    assert not empty.HasField("token")
    await driver.create("c1", LLV2, llv2_details(1, []))
    claimed = await driver.stub.ClaimWork(
        pb.ClaimWorkRequest(
            computation_type=LLV2,
            owner="mill-1",
            lock_duration=Duration(seconds=60),
            prioritized_stages=[stage_to_proto(LLV2, 1)],
        )
    )
    assert claimed.token.global_computation_id == "c1"
    assert claimed.token.lock_owner == "mill-1"
    assert claimed.token.attempt == 1
    again = await driver.stub.ClaimWork(pb.ClaimWorkRequest(computation_type=LLV2, owner="mill-2"))
    assert not again.HasField("token")
    no_owner = await failure(driver.stub.ClaimWork(pb.ClaimWorkRequest(computation_type=LLV2)))
    assert no_owner.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_advance_record_output_and_transition_errors(driver: ComputationDriver) -> None:
    token = await driver.create("c1", LLV2, llv2_details(2, []))
    illegal = await failure(driver.advance(token, LLV2, 6, AfterTransition.ADD_UNCLAIMED_TO_QUEUE))
    assert illegal.code() == grpc.StatusCode.FAILED_PRECONDITION
    unspecified = await failure(driver.advance(token, LLV2, 2, AfterTransition.UNSPECIFIED))
    assert unspecified.code() == grpc.StatusCode.INVALID_ARGUMENT

    token = await driver.llv2_non_aggregator_at("c2", 6)  # SETUP_PHASE, one empty output
    not_written = await failure(driver.advance(token, LLV2, 7, AfterTransition.DO_NOT_ADD_TO_QUEUE))
    assert not_written.code() == grpc.StatusCode.FAILED_PRECONDITION
    token = await driver.record_output(token, 0, "c2/SETUP_PHASE/0")
    assert token.blobs[0].path == "c2/SETUP_PHASE/0"
    not_output = await failure(driver.record_output(token, 5, "x"))
    assert not_output.code() == grpc.StatusCode.FAILED_PRECONDITION
    blank = await failure(driver.record_output(token, 0, ""))
    assert blank.code() == grpc.StatusCode.INVALID_ARGUMENT
    advanced = await driver.advance(
        token, LLV2, 7, AfterTransition.DO_NOT_ADD_TO_QUEUE, inputs=["c2/SETUP_PHASE/0"], outputs=1
    )
    assert stage_of(advanced) == 7
    assert [(b.blob_id, b.dependency_type, b.path) for b in advanced.blobs] == [
        (0, computation_details_pb2.INPUT, "c2/SETUP_PHASE/0"),
        (1, computation_details_pb2.OUTPUT, ""),
    ]
    assert not advanced.HasField("lock_expiration_time")  # a WAIT stage leaves the queue
    stale = await failure(driver.advance(token, LLV2, 7, AfterTransition.DO_NOT_ADD_TO_QUEUE))
    assert stale.code() == grpc.StatusCode.ABORTED


async def test_finish_records_the_ending_state(driver: ComputationDriver) -> None:
    token = await driver.create("c1", LLV2, llv2_details(1, []))
    not_terminal = await failure(
        driver.stub.FinishComputation(
            pb.FinishComputationRequest(
                token=token,
                ending_computation_stage=stage_to_proto(LLV2, 12),
                reason=computation_details_pb2.ComputationDetails.FAILED,
            )
        )
    )
    assert not_terminal.code() == grpc.StatusCode.INVALID_ARGUMENT
    finished = (
        await driver.stub.FinishComputation(
            pb.FinishComputationRequest(
                token=token,
                ending_computation_stage=stage_to_proto(LLV2, 13),
                reason=computation_details_pb2.ComputationDetails.FAILED,
            )
        )
    ).token
    assert stage_of(finished) == 13
    assert (
        finished.computation_details.ending_state
        == computation_details_pb2.ComputationDetails.FAILED
    )
    assert not finished.HasField("lock_expiration_time")


async def test_enqueue(driver: ComputationDriver) -> None:
    await driver.create("c1", LLV2, llv2_details(1, []))
    token = (
        await driver.stub.ClaimWork(pb.ClaimWorkRequest(computation_type=LLV2, owner="mill-1"))
    ).token
    wrong_owner = await failure(
        driver.stub.EnqueueComputation(
            pb.EnqueueComputationRequest(token=token, expected_owner="mill-2")
        )
    )
    assert wrong_owner.code() == grpc.StatusCode.ABORTED
    assert error_reason(wrong_owner) == "COMPUTATION_LOCK_OWNER_MISMATCH"
    negative = await failure(
        driver.stub.EnqueueComputation(pb.EnqueueComputationRequest(token=token, delay_seconds=-1))
    )
    assert negative.code() == grpc.StatusCode.INVALID_ARGUMENT
    await driver.stub.EnqueueComputation(
        pb.EnqueueComputationRequest(token=token, expected_owner="mill-1", delay_seconds=3600)
    )
    queued = await driver.get("c1")
    assert queued.lock_owner == ""
    assert queued.lock_expiration_time.ToDatetime(tzinfo=UTC) > datetime.now(UTC) + timedelta(
        minutes=30
    )
    stale = await failure(driver.stub.EnqueueComputation(pb.EnqueueComputationRequest(token=token)))
    assert stale.code() == grpc.StatusCode.ABORTED


async def test_record_requisition_fulfillment(driver: ComputationDriver) -> None:
    token = await driver.create("c1", 3, hmss_details(1), [requisition("r1")])
    key = token.requisitions[0].external_key
    seed = computation_details_pb2.RequisitionProtocolDetails(
        honest_majority_share_shuffle=computation_details_pb2.RequisitionProtocolDetails.HonestMajorityShareShuffle(
            secret_seed_ciphertext=b"seed",
            register_count=7,
            data_provider_certificate="dataProviders/edp1/certificates/c",
        )
    )
    recorded = (
        await driver.stub.RecordRequisitionFulfillment(
            pb.RecordRequisitionFulfillmentRequest(
                token=token,
                key=key,
                blob_path="c1/r1",
                public_api_version="v1",
                protocol_details=seed,
            )
        )
    ).token
    metadata = recorded.requisitions[0]
    assert metadata.path == "c1/r1"
    assert metadata.details.public_api_version == "v1"
    assert metadata.details.nonce_hash == b"h" * 32  # kept
    assert metadata.details.protocol == seed
    assert metadata.details.nonce == 0
    acknowledged = (
        await driver.stub.RecordRequisitionFulfillment(
            pb.RecordRequisitionFulfillmentRequest(
                token=recorded, key=key, blob_path="c1/r1", public_api_version="v1", nonce=2**64 - 1
            )
        )
    ).token.requisitions[0]
    assert acknowledged.details.nonce == 2**64 - 1
    assert acknowledged.details.protocol == seed  # unset protocol details leave them alone
    no_version = await failure(
        driver.stub.RecordRequisitionFulfillment(
            pb.RecordRequisitionFulfillmentRequest(token=token, key=key, blob_path="c1/r1")
        )
    )
    assert no_version.code() == grpc.StatusCode.INVALID_ARGUMENT
    other_key = computation_details_pb2.ExternalRequisitionKey(
        external_requisition_id="r2", requisition_fingerprint=FINGERPRINT
    )
    unknown = await failure(
        driver.stub.RecordRequisitionFulfillment(
            pb.RecordRequisitionFulfillmentRequest(
                token=token, key=other_key, blob_path="c1/r2", public_api_version="v1"
            )
        )
    )
    assert unknown.code() == grpc.StatusCode.NOT_FOUND


def _write_blob(root: Path, key: str, data: bytes = b"data") -> Path:
    path = root.joinpath(*key.split("/"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


async def test_delete_removes_the_computation_and_its_blobs(
    driver: ComputationDriver, blob_root: Path
) -> None:
    token = await driver.llv2_non_aggregator_at("c1", 6, [requisition("r1")])
    token = await driver.record_output(token, 0, "c1/SETUP_PHASE/0")
    await driver.stub.RecordRequisitionFulfillment(
        pb.RecordRequisitionFulfillmentRequest(
            token=token,
            key=token.requisitions[0].external_key,
            blob_path="c1/r1",
            public_api_version="v1",
        )
    )
    stage_blob = _write_blob(blob_root, "computations/c1/SETUP_PHASE/0")
    unrecorded = _write_blob(blob_root, "computations/c1/WAIT_EXECUTION_PHASE_ONE_INPUTS/1")
    requisition_blob = _write_blob(blob_root, "requisitions/c1/r1")
    other = _write_blob(blob_root, "computations/c2/SETUP_PHASE/0")

    await driver.stub.DeleteComputation(
        pb.DeleteComputationRequest(local_computation_id=token.local_computation_id)
    )

    assert not stage_blob.exists() and not unrecorded.exists() and not requisition_blob.exists()
    assert other.exists()
    gone = await failure(driver.get("c1"))
    assert gone.code() == grpc.StatusCode.NOT_FOUND
    # Unknown ids are a no-op.
    await driver.stub.DeleteComputation(pb.DeleteComputationRequest(local_computation_id=12345))


async def test_purge_dry_run_then_force(driver: ComputationDriver, blob_root: Path) -> None:
    for gid in ("c1", "c2"):
        token = await driver.create(gid, LLV2, llv2_details(1, []))
        await driver.stub.FinishComputation(
            pb.FinishComputationRequest(
                token=token,
                ending_computation_stage=stage_to_proto(LLV2, 13),
                reason=computation_details_pb2.ComputationDetails.SUCCEEDED,
            )
        )
    await driver.create("c3", LLV2, llv2_details(1, []))
    blob = _write_blob(blob_root, "computations/c1/SETUP_PHASE/0")
    later = Timestamp()
    later.FromDatetime(datetime.now(UTC) + timedelta(minutes=1))
    complete = [stage_to_proto(LLV2, 13)]

    dry = await driver.stub.PurgeComputations(
        pb.PurgeComputationsRequest(updated_before=later, stages=complete)
    )
    assert (dry.purge_count, sorted(dry.purge_sample)) == (2, ["c1", "c2"])
    assert blob.exists()

    forced = await driver.stub.PurgeComputations(
        pb.PurgeComputationsRequest(updated_before=later, stages=complete, force=True)
    )
    assert forced.purge_count == 2 and not forced.purge_sample
    assert not blob.exists()
    assert (await driver.get("c3")).global_computation_id == "c3"
    not_terminal = await failure(
        driver.stub.PurgeComputations(
            pb.PurgeComputationsRequest(updated_before=later, stages=[stage_to_proto(LLV2, 1)])
        )
    )
    assert not_terminal.code() == grpc.StatusCode.INVALID_ARGUMENT
    mixed = await failure(
        driver.stub.PurgeComputations(
            pb.PurgeComputationsRequest(
                updated_before=later, stages=[stage_to_proto(LLV2, 13), stage_to_proto(3, 9)]
            )
        )
    )
    assert mixed.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_get_computation_ids_by_stage(driver: ComputationDriver) -> None:
    await driver.create("c1", LLV2, llv2_details(1, []))
    await driver.llv2_non_aggregator_at("c2", 4)
    await driver.create("h1", 3, hmss_details(1))
    reply = await driver.stub.GetComputationIds(
        pb.GetComputationIdsRequest(stages=[stage_to_proto(LLV2, 1), stage_to_proto(LLV2, 4)])
    )
    assert sorted(reply.global_ids) == ["c1", "c2"]
    empty = await failure(driver.stub.GetComputationIds(pb.GetComputationIdsRequest()))
    assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT


def await_work(since: str, seconds: float) -> pb.AwaitWorkRequest:
    timeout = Duration()
    timeout.FromTimedelta(timedelta(seconds=seconds))
    return pb.AwaitWorkRequest(since=since, timeout=timeout)


async def test_await_work_answers_when_work_appears(driver: ComputationDriver) -> None:
    quiet = await driver.stub.AwaitWork(await_work("", 0.05))
    assert not quiet.changed and quiet.change

    # Whether the wait reaches the server before or after the creation, it sees the change.
    waiting = asyncio.ensure_future(driver.stub.AwaitWork(await_work(quiet.change, 60)))
    await driver.create("c1", LLV2, llv2_details(1, []))
    woken = await asyncio.wait_for(waiting, timeout=30)
    assert woken.changed and woken.change != quiet.change

    # A marker older than the latest change is answered at once.
    stale = await asyncio.wait_for(driver.stub.AwaitWork(await_work(quiet.change, 60)), 30)
    assert stale.changed and stale.change == woken.change


async def test_claiming_is_not_a_change_and_foreign_markers_wait(
    driver: ComputationDriver,
) -> None:
    await driver.create("c1", LLV2, llv2_details(1, []))
    marker = (await driver.stub.AwaitWork(await_work("", 0.01))).change
    claimed = await driver.stub.ClaimWork(pb.ClaimWorkRequest(computation_type=LLV2, owner="m"))
    assert claimed.HasField("token")
    after_claim = await driver.stub.AwaitWork(await_work(marker, 0.2))
    assert not after_claim.changed and after_claim.change == marker
    # From another replica or before a restart: no shortcut, just the wait.
    foreign = await driver.stub.AwaitWork(await_work("0123456789abcdef:99", 0.05))
    assert not foreign.changed


async def test_await_work_needs_a_bounded_timeout(driver: ComputationDriver) -> None:
    for request in (
        pb.AwaitWorkRequest(),
        await_work("", 0),
        await_work("", 301),
    ):
        error = await failure(driver.stub.AwaitWork(request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "timeout" in (error.details() or "")
