"""System `ComputationControl`, served to peer duchies (duchy_internals §5 with the recommended
fixes of §4 and pitfalls 11-12).

AdvanceComputation: the header names the computation and which input this is; the caller (a
duchy, from its TLS certificate) must take part in the computation. The receiver's position
decides what happens before any byte is stored:

* at the WAIT stage expecting the input: stream the body into the computation store at the
  deterministic key, then let AsyncComputationControl record it and advance;
* already past that stage: OK, nothing is written (a late resend);
* anywhere else (behind, or elsewhere): ABORTED, which the sender retries.

A resend while the slot already holds its (deterministic) path is acknowledged without reading
the body again: the recorded blob was complete when it was recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import grpc

from cmms.api.system.v1 import computation_control_pb2, computation_control_pb2_grpc
from cmms.common.grpc import StatusError, fail
from cmms.common.identity import PrincipalKind, PrincipalProvider, current_principal
from cmms.duchy.control.async_client import AsyncControlClient
from cmms.duchy.control.headers import (
    SYSTEM_STAGE_FIELDS,
    HeaderError,
    parse_header,
    parse_stage_name,
)
from cmms.duchy.control.stage_position import Position, participants_of, position, role_of
from cmms.duchy.internal_api.convert import stage_from_proto
from cmms.duchy.internal_client import InternalComputationsClient, Token
from cmms.duchy.upload import BodyRules, body_chunks, store_body
from cmms.protocols.stages import stage_graph
from cmms.storage import BlobStore, ComputationBlobKey

pb = computation_control_pb2
Request = pb.AdvanceComputationRequest


def stage_etag(version: int) -> str:
    """`W/"<uppercase hex SHA-256 of the 8-byte big-endian version>"`."""
    digest = hashlib.sha256((version % 2**64).to_bytes(8, "big")).hexdigest().upper()
    return f'W/"{digest}"'


def _chunk_of(message: Request) -> bytes | None:
    if message.WhichOneof("payload") != "body_chunk":
        return None
    return message.body_chunk.partial_data


class ComputationControlServicer(computation_control_pb2_grpc.ComputationControlServicer):
    def __init__(
        self,
        duchy_id: str,
        computations: InternalComputationsClient,
        async_control: AsyncControlClient,
        store: BlobStore,
        *,
        max_payload_bytes: int,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._duchy_id = duchy_id
        self._computations = computations
        self._async = async_control
        self._store = store
        self._max_payload_bytes = max_payload_bytes
        self._principal = principal_provider

    def _calling_duchy(self) -> str:
        principal = self._principal()
        if principal.kind is not PrincipalKind.DUCHY:
            fail(grpc.StatusCode.PERMISSION_DENIED, f"{principal} is not a duchy")
        return principal.id

    def _require_participant(self, token: Token, duchy_id: str) -> None:
        if duchy_id not in participants_of(token.computation_details):
            fail(
                grpc.StatusCode.PERMISSION_DENIED,
                f"duchies/{duchy_id} does not take part in computation "
                f"{token.global_computation_id}",
            )

    async def AdvanceComputation(
        self, request_iterator: AsyncIterator[Request], context: Any
    ) -> pb.AdvanceComputationResponse:
        sender = self._calling_duchy()
        first = await anext(aiter(request_iterator), None)
        if first is None:
            fail(grpc.StatusCode.INVALID_ARGUMENT, "empty request stream")
        if first.WhichOneof("payload") != "header":
            fail(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be the header")
        try:
            announced = parse_header(first.header)
        except HeaderError as error:
            raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error
        gid = announced.global_computation_id
        token = await self._computations.get_token(gid)
        self._require_participant(token, sender)
        protocol, current = stage_from_proto(token.computation_stage)
        if protocol != announced.protocol:
            fail(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"computation {gid} runs protocol {protocol}, the header names {announced.protocol}",
            )
        graph = stage_graph(protocol)
        expected = announced.expected.stage
        role = role_of(token.computation_details)
        entry = graph.entries.get(expected)
        if entry is None or not entry.allows_role(role):
            fail(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"this duchy never waits in {graph.stage(expected).name} of computation {gid}",
            )
        found = position(graph, role, expected, current)
        if found is Position.PAST:
            return pb.AdvanceComputationResponse()
        if found is Position.NOT_THERE:
            fail(
                grpc.StatusCode.ABORTED,
                f"computation {gid} is at {graph.stage(current).name}, "
                f"not at {graph.stage(expected).name}; retry later",
            )
        try:
            slot = await self._async.output_blob_metadata(gid, sender, protocol, expected)
        except StatusError as error:
            if error.code == grpc.StatusCode.ALREADY_EXISTS:
                return pb.AdvanceComputationResponse()  # moved past it since we looked
            raise
        if slot.path:
            path = slot.path
        else:
            path = ComputationBlobKey(gid, graph.stage(expected).name, slot.blob_id).path
            rules = BodyRules(self._max_payload_bytes, announced.expected.record_size)
            await store_body(self._store, path, body_chunks(request_iterator, _chunk_of, rules))
        # Async's codes are explicit (ABORTED/UNAVAILABLE retryable, FAILED_PRECONDITION not).
        await self._async.advance(gid, protocol, expected, slot.blob_id, path)
        return pb.AdvanceComputationResponse()

    async def GetComputationStage(
        self, request: pb.GetComputationStageRequest, context: Any
    ) -> pb.ComputationStage:
        caller = self._calling_duchy()
        try:
            gid, duchy_id = parse_stage_name(request.name)
        except HeaderError as error:
            raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error
        if duchy_id != self._duchy_id:
            fail(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"this is duchies/{self._duchy_id}, not duchies/{duchy_id}",
            )
        token = await self._computations.get_token(gid)
        self._require_participant(token, caller)
        protocol, stage = stage_from_proto(token.computation_stage)
        member = SYSTEM_STAGE_FIELDS.get(protocol)
        if member is None:
            fail(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"computation {gid} runs a protocol without peer stages",
            )
        reply = pb.ComputationStage(name=request.name, etag=stage_etag(token.version))
        getattr(reply, member).stage = stage
        return reply
