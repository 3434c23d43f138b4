"""`Computations`: a thin servicer over `ComputationsRepository` (duchy_internals §2).

Requests are converted with `convert`, repository errors become statuses through
`translating_errors`; the semantics (version checks, queue, transitions) live in the repository.
"""

from __future__ import annotations

from datetime import UTC, timedelta
from enum import IntEnum
from typing import Any, TypeVar

import grpc
from google.protobuf import empty_pb2, json_format

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_protocols_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
)
from cmms.common.grpc import fail
from cmms.duchy.db import (
    CompletedReason,
    ComputationsRepositoryInterface,
    DeletedComputation,
    NewRequisition,
    StageKey,
)
from cmms.duchy.db.errors import ComputationNotFoundError
from cmms.duchy.internal_api.blob_cleanup import BlobCleanup
from cmms.duchy.internal_api.convert import (
    STAGE_FIELDS,
    ConversionError,
    edit_token_from_proto,
    requisition_key_from_proto,
    stage_from_proto,
    token_to_proto,
)
from cmms.duchy.internal_api.errors import translating_errors
from cmms.duchy.internal_api.work_signal import WorkSignal
from cmms.protocols.stages import AfterTransition

pb = computations_service_pb2
# Longer waits would outlive proxies' idle timeouts for no gain: a scheduler just asks again.
MAX_AWAIT_WORK = timedelta(minutes=5)


def _json(message: Any) -> str:
    return json_format.MessageToJson(message, indent=None)


def _stage_of(protocol: int, message: computation_protocols_pb2.ComputationStage) -> int:
    stage_protocol, stage = stage_from_proto(message)
    if stage_protocol != protocol:
        raise ConversionError(
            f"stage of protocol {stage_protocol} given for a protocol {protocol} computation"
        )
    return stage


def _stage_keys(stages: Any) -> list[StageKey]:
    return [StageKey(*stage_from_proto(s)) for s in stages]


def _check_details_protocol(
    protocol: int, details: computation_details_pb2.ComputationDetails
) -> None:
    chosen = details.WhichOneof("protocol")
    if chosen is not None and chosen != STAGE_FIELDS[protocol]:
        raise ConversionError(
            f"details are for {chosen}, the computation runs {STAGE_FIELDS[protocol]}"
        )


Number = TypeVar("Number", bound=IntEnum)


def _enum(kind: type[Number], value: int, what: str) -> Number:
    try:
        return kind(value)
    except ValueError:
        raise ConversionError(f"{what} {value} is not a known value") from None


def _require_type(computation_type: int) -> int:
    if computation_type not in STAGE_FIELDS:
        fail(grpc.StatusCode.INVALID_ARGUMENT, f"unknown computation type {computation_type}")
    return computation_type


class ComputationsServicer(computations_service_pb2_grpc.ComputationsServicer):
    def __init__(
        self,
        repository: ComputationsRepositoryInterface,
        cleanup: BlobCleanup,
        work_signal: WorkSignal | None = None,
    ) -> None:
        self._repository = repository
        self._cleanup = cleanup
        # Woken by every write through this server that may make work claimable (AwaitWork).
        self._work = work_signal or WorkSignal()

    @translating_errors
    async def CreateComputation(
        self, request: pb.CreateComputationRequest, context: Any
    ) -> pb.CreateComputationResponse:
        protocol = _require_type(request.computation_type)
        initial = (
            _stage_of(protocol, request.computation_stage)
            if request.HasField("computation_stage")
            else None
        )
        _check_details_protocol(protocol, request.computation_details)
        token = await self._repository.create_computation(
            global_computation_id=request.global_computation_id,
            protocol=protocol,
            computation_details=request.computation_details.SerializeToString(),
            computation_details_json=_json(request.computation_details),
            initial_stage=initial,
            stage_details=request.stage_details.SerializeToString(),
            requisitions=[
                NewRequisition(
                    key=requisition_key_from_proto(entry.key),
                    details=entry.value.SerializeToString(),
                    details_json=_json(entry.value),
                )
                for entry in request.requisitions
            ],
        )
        self._work.notify()
        return pb.CreateComputationResponse(token=token_to_proto(token))

    @translating_errors
    async def GetComputationToken(
        self, request: pb.GetComputationTokenRequest, context: Any
    ) -> pb.GetComputationTokenResponse:
        key = request.WhichOneof("key")
        if key == "global_computation_id":
            token = await self._repository.get_token(request.global_computation_id)
        elif key == "requisition_key":
            token = await self._repository.get_token_by_requisition_key(
                requisition_key_from_proto(request.requisition_key)
            )
        else:
            fail(grpc.StatusCode.INVALID_ARGUMENT, "a global id or a requisition key is required")
        return pb.GetComputationTokenResponse(token=token_to_proto(token))

    @translating_errors
    async def UpdateComputationDetails(
        self, request: pb.UpdateComputationDetailsRequest, context: Any
    ) -> pb.UpdateComputationDetailsResponse:
        token = edit_token_from_proto(request.token)
        _check_details_protocol(token.protocol, request.details)
        updated = await self._repository.update_computation_details(
            token,
            request.details.SerializeToString(),
            requisition_details={
                requisition_key_from_proto(e.key): e.value.SerializeToString()
                for e in request.requisitions
            },
            computation_details_json=_json(request.details),
        )
        return pb.UpdateComputationDetailsResponse(token=token_to_proto(updated))

    @translating_errors
    async def AdvanceComputationStage(
        self, request: pb.AdvanceComputationStageRequest, context: Any
    ) -> pb.AdvanceComputationStageResponse:
        token = edit_token_from_proto(request.token)
        next_stage = _stage_of(token.protocol, request.next_computation_stage)
        extension = (
            request.lock_extension.ToTimedelta() if request.HasField("lock_extension") else None
        )
        advanced = await self._repository.advance_stage(
            token,
            next_stage,
            after_transition=_enum(AfterTransition, request.after_transition, "after_transition"),
            input_blob_paths=list(request.input_blobs),
            pass_through_blob_paths=list(request.pass_through_blobs),
            output_blob_count=request.output_blobs,
            stage_details=request.stage_details.SerializeToString(),
            lock_extension=extension,
        )
        self._work.notify()
        return pb.AdvanceComputationStageResponse(token=token_to_proto(advanced))

    @translating_errors
    async def FinishComputation(
        self, request: pb.FinishComputationRequest, context: Any
    ) -> pb.FinishComputationResponse:
        token = edit_token_from_proto(request.token)
        ending_stage = _stage_of(token.protocol, request.ending_computation_stage)
        reason = _enum(CompletedReason, request.reason, "reason")
        # The ending state goes into the *stored* details, not the (possibly partial) request copy.
        stored = await self._repository.get_token_by_local_id(token.local_computation_id)
        details = computation_details_pb2.ComputationDetails.FromString(stored.computation_details)
        details.ending_state = request.reason
        finished = await self._repository.finish_computation(
            token,
            ending_stage,
            reason,
            computation_details=details.SerializeToString(),
            computation_details_json=_json(details),
        )
        return pb.FinishComputationResponse(token=token_to_proto(finished))

    @translating_errors
    async def ClaimWork(self, request: pb.ClaimWorkRequest, context: Any) -> pb.ClaimWorkResponse:
        protocol = _require_type(request.computation_type)
        claimed = await self._repository.claim_work(
            protocol,
            request.owner,
            lock_duration=(
                request.lock_duration.ToTimedelta() if request.HasField("lock_duration") else None
            ),
            prioritized_stages=[_stage_of(protocol, s) for s in request.prioritized_stages],
        )
        if claimed is None:
            return pb.ClaimWorkResponse()
        return pb.ClaimWorkResponse(token=token_to_proto(claimed))

    @translating_errors
    async def AwaitWork(self, request: pb.AwaitWorkRequest, context: Any) -> pb.AwaitWorkResponse:
        timeout = request.timeout.ToTimedelta() if request.HasField("timeout") else timedelta(0)
        if not timedelta(0) < timeout <= MAX_AWAIT_WORK:
            fail(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"timeout must be positive and at most {MAX_AWAIT_WORK.total_seconds():g} s",
            )
        outcome = await self._work.wait(request.since, timeout.total_seconds())
        return pb.AwaitWorkResponse(change=outcome.change, changed=outcome.changed)

    @translating_errors
    async def RecordOutputBlobPath(
        self, request: pb.RecordOutputBlobPathRequest, context: Any
    ) -> pb.RecordOutputBlobPathResponse:
        recorded = await self._repository.record_output_blob_path(
            edit_token_from_proto(request.token), request.output_blob_id, request.blob_path
        )
        return pb.RecordOutputBlobPathResponse(token=token_to_proto(recorded))

    @translating_errors
    async def EnqueueComputation(
        self, request: pb.EnqueueComputationRequest, context: Any
    ) -> pb.EnqueueComputationResponse:
        await self._repository.enqueue_computation(
            edit_token_from_proto(request.token),
            timedelta(seconds=request.delay_seconds),
            expected_owner=request.expected_owner or None,
        )
        self._work.notify()
        return pb.EnqueueComputationResponse()

    @translating_errors
    async def RecordRequisitionFulfillment(
        self, request: pb.RecordRequisitionFulfillmentRequest, context: Any
    ) -> pb.RecordRequisitionFulfillmentResponse:
        if request.token.local_computation_id == 0:
            fail(grpc.StatusCode.INVALID_ARGUMENT, "token.local_computation_id is required")
        if not request.public_api_version.strip():
            fail(grpc.StatusCode.INVALID_ARGUMENT, "public_api_version is required")
        protocol_details = (
            request.protocol_details if request.HasField("protocol_details") else None
        )

        def update(stored: bytes) -> bytes:
            details = computation_details_pb2.RequisitionDetails.FromString(stored)
            details.public_api_version = request.public_api_version
            if protocol_details is not None:
                details.protocol.CopyFrom(protocol_details)
            if request.nonce:
                details.nonce = request.nonce
            return details.SerializeToString()

        recorded = await self._repository.record_requisition_fulfillment(
            request.token.local_computation_id,
            requisition_key_from_proto(request.key),
            request.blob_path,
            update_details=update,
        )
        self._work.notify()
        return pb.RecordRequisitionFulfillmentResponse(token=token_to_proto(recorded))

    @translating_errors
    async def DeleteComputation(
        self, request: pb.DeleteComputationRequest, context: Any
    ) -> empty_pb2.Empty:
        try:
            stored = await self._repository.get_token_by_local_id(request.local_computation_id)
        except ComputationNotFoundError:
            return empty_pb2.Empty()  # deleting an unknown computation is a no-op
        await self._cleanup.delete_blobs([DeletedComputation(0, stored.global_computation_id)])
        deleted = await self._repository.delete_computation(request.local_computation_id)
        await self._cleanup.delete_blobs([deleted])
        return empty_pb2.Empty()

    @translating_errors
    async def PurgeComputations(
        self, request: pb.PurgeComputationsRequest, context: Any
    ) -> pb.PurgeComputationsResponse:
        stages = _stage_keys(request.stages)
        cutoff = request.updated_before.ToDatetime(tzinfo=UTC)
        selected = await self._repository.purge_computations(cutoff, stages, force=False)
        if not request.force:
            return pb.PurgeComputationsResponse(
                purge_count=selected.purge_count, purge_sample=list(selected.global_ids)
            )
        await self._cleanup.delete_blobs(selected.per_computation)
        purged = await self._repository.purge_computations(cutoff, stages, force=True)
        # Computations that became eligible between the two selections lose their blobs now.
        await self._cleanup.delete_blobs(purged.per_computation)
        return pb.PurgeComputationsResponse(purge_count=purged.purge_count)

    @translating_errors
    async def GetComputationIds(
        self, request: pb.GetComputationIdsRequest, context: Any
    ) -> pb.GetComputationIdsResponse:
        ids = await self._repository.global_ids_in_stages(_stage_keys(request.stages))
        return pb.GetComputationIdsResponse(global_ids=ids)
