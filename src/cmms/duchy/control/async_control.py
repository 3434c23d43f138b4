"""`AsyncComputationControl`: records a peer's input and advances once all inputs are present.

Follows duchy_internals §4 with its recommended fixes:

* The slot is resolved for the stage named in the request, not just the current one.
* A computation already past that stage answers OK (AdvanceComputation) or ALREADY_EXISTS
  (GetOutputBlobMetadata: there is no slot to fill any more); one that is not there yet, or on a
  path that never reaches it, answers ABORTED, which senders retry.
* The same path again is idempotent; a different path for a filled slot is FAILED_PRECONDITION.
* RecordOutputBlobPath and the final advance are retried from a fresh token on UNAVAILABLE or
  ABORTED (two peers' inputs racing on one version), with bounded exponential backoff. When the
  attempts run out the last retryable code is returned, so the sender retries too.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from cmms.api.internal.duchy.v1 import (
    async_computation_control_service_pb2,
    async_computation_control_service_pb2_grpc,
    computation_details_pb2,
    computation_token_pb2,
    computations_service_pb2,
)
from cmms.common.grpc import StatusError, fail
from cmms.common.logging import get_logger
from cmms.duchy.control.stage_position import (
    Position,
    output_slot,
    participants_of,
    position,
    role_of,
)
from cmms.duchy.internal_api.convert import (
    ConversionError,
    output_paths,
    stage_from_proto,
    stage_to_proto,
)
from cmms.duchy.internal_client import InternalComputationsClient
from cmms.protocols.stages import StageGraph, StageGraphError, stage_graph

pb = async_computation_control_service_pb2
Token = computation_token_pb2.ComputationToken
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED})
_logger = get_logger("cmms.duchy.async_control")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with ±50 % jitter between attempts of the whole procedure."""

    max_attempts: int = 10
    initial_seconds: float = 0.5
    multiplier: float = 1.5

    def delay(self, attempt: int, jitter: float) -> float:
        return self.initial_seconds * self.multiplier ** (attempt - 1) * (0.5 + jitter)


class _Retryable(Exception):
    def __init__(self, error: StatusError) -> None:
        super().__init__(error.message)
        self.error = error


def _expected_stage(graph_protocol: int, message: Any) -> int:
    try:
        protocol, stage = stage_from_proto(message)
    except ConversionError as error:
        fail(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    if protocol != graph_protocol:
        fail(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"stage of protocol {protocol} named for a protocol {graph_protocol} computation",
        )
    return stage


def _check_waits_for_input(graph: StageGraph, role: int, stage: int) -> None:
    """FAILED_PRECONDITION unless `stage` is a WAIT stage with peer inputs that `role` enters."""
    entry = graph.entries.get(stage)
    takes_inputs = entry is not None and (
        entry.one_output_per_other_participant or entry.output_slots > 0
    )
    if entry is None or not graph.is_wait(stage) or not takes_inputs:
        fail(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"{graph.stage(stage).name} does not take inputs from peers",
        )
    if not entry.allows_role(role):
        fail(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"a duchy with role {role} never waits in {graph.stage(stage).name}",
        )


def _graph(token: Token) -> StageGraph:
    protocol, _ = stage_from_proto(token.computation_stage)
    return stage_graph(protocol)


def _current_stage(token: Token) -> int:
    return stage_from_proto(token.computation_stage)[1]


class AsyncComputationControlServicer(
    async_computation_control_service_pb2_grpc.AsyncComputationControlServicer
):
    def __init__(
        self,
        computations: InternalComputationsClient,
        *,
        backoff: Backoff = Backoff(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._computations = computations
        self._backoff = backoff
        self._sleep = sleep
        self._jitter = jitter

    async def GetOutputBlobMetadata(
        self, request: pb.GetOutputBlobMetadataRequest, context: Any
    ) -> computation_token_pb2.ComputationStageBlobMetadata:
        token = await self._computations.get_token(request.global_computation_id)
        graph = _graph(token)
        current = _current_stage(token)
        stage = (
            _expected_stage(graph.protocol, request.computation_stage)
            if request.HasField("computation_stage")
            else current
        )
        role = role_of(token.computation_details)
        _check_waits_for_input(graph, role, stage)
        found = position(graph, role, stage, current)
        if found is Position.PAST:
            fail(
                grpc.StatusCode.ALREADY_EXISTS,
                f"computation is past {graph.stage(stage).name}; the input is not needed",
            )
        if found is Position.NOT_THERE:
            fail(
                grpc.StatusCode.ABORTED,
                f"computation is at {graph.stage(current).name}, "
                f"not yet at {graph.stage(stage).name}",
            )
        return output_slot(graph, token, stage, request.data_origin)

    async def AdvanceComputation(
        self, request: pb.AdvanceComputationRequest, context: Any
    ) -> pb.AdvanceComputationResponse:
        if not request.HasField("computation_stage"):
            fail(grpc.StatusCode.INVALID_ARGUMENT, "computation_stage is required")
        if not request.blob_path:
            fail(grpc.StatusCode.INVALID_ARGUMENT, "blob_path is required")
        attempt = 1
        while True:
            try:
                await self._advance_once(request)
                return pb.AdvanceComputationResponse()
            except _Retryable as retryable:
                if attempt >= self._backoff.max_attempts:
                    raise retryable.error from retryable
                delay = self._backoff.delay(attempt, self._jitter())
                _logger.info(
                    "advance_retry",
                    computation=request.global_computation_id,
                    attempt=attempt,
                    code=retryable.error.code.name,
                    delay_seconds=round(delay, 3),
                )
                await self._sleep(delay)
                attempt += 1

    async def _advance_once(self, request: pb.AdvanceComputationRequest) -> None:
        token = await self._computations.get_token(request.global_computation_id)
        graph = _graph(token)
        expected = _expected_stage(graph.protocol, request.computation_stage)
        current = _current_stage(token)
        role = role_of(token.computation_details)
        _check_waits_for_input(graph, role, expected)
        found = position(graph, role, expected, current)
        if found is Position.PAST:
            return
        if found is Position.NOT_THERE:
            fail(
                grpc.StatusCode.ABORTED,
                f"computation is at {graph.stage(current).name}, "
                f"not at {graph.stage(expected).name}",
            )
        slot = next(
            (
                b
                for b in token.blobs
                if b.blob_id == request.blob_id
                and b.dependency_type == computation_details_pb2.OUTPUT
            ),
            None,
        )
        if slot is None:
            fail(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"blob {request.blob_id} is not an OUTPUT slot of {graph.stage(current).name}",
            )
        if slot.path and slot.path != request.blob_path:
            fail(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"blob {request.blob_id} already holds {slot.path!r}, not {request.blob_path!r}",
            )
        if not slot.path:
            token = await _retryable(
                self._computations.record_output_blob_path(token, slot.blob_id, request.blob_path)
            )
        paths = output_paths(token)
        if all(paths):
            await _retryable(
                self._computations.advance_stage(_next_stage_request(graph, token, role, paths))
            )


async def _retryable(reply: Awaitable[Token]) -> Token:
    try:
        return await reply
    except StatusError as error:
        if error.code in _RETRYABLE:
            raise _Retryable(error) from error
        raise


def _next_stage_request(
    graph: StageGraph, token: Token, role: int, inputs: list[str]
) -> computations_service_pb2.AdvanceComputationStageRequest:
    current = _current_stage(token)
    try:
        following = graph.next_stage(current, role).value
        entry = graph.entry(following)
        outputs = entry.output_slot_count(len(participants_of(token.computation_details)) or None)
    except (StageGraphError, ValueError) as error:
        raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, str(error)) from error
    return computations_service_pb2.AdvanceComputationStageRequest(
        token=token,
        next_computation_stage=stage_to_proto(graph.protocol, following),
        input_blobs=inputs,
        output_blobs=outputs,
        after_transition=int(entry.after_transition),  # type: ignore[arg-type]
    )
