"""Where a computation stands relative to the WAIT stage an input is for, and which slot the
input fills (duchy_internals §4 with its recommended fixes, pitfalls 11-12).

Pure functions over a token: both control servers use them, so they always agree.
"""

from __future__ import annotations

import enum

import grpc

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_token_pb2,
)
from cmms.common.grpc import StatusError
from cmms.protocols.stages import StageGraph, StageGraphError

Token = computation_token_pb2.ComputationToken
BlobMetadata = computation_token_pb2.ComputationStageBlobMetadata


class Position(enum.Enum):
    AT = "at"  # waiting for exactly this input
    PAST = "past"  # went through the stage already (or ended): the input is no longer needed
    NOT_THERE = "not there"  # behind, or on a path that never waits for it: retry later


def role_of(details: computation_details_pb2.ComputationDetails) -> int:
    protocol = details.WhichOneof("protocol")
    if protocol is None:
        return 0
    role: int = getattr(details, protocol).role
    return role


def participants_of(details: computation_details_pb2.ComputationDetails) -> frozenset[str]:
    """Duchies taking part in the computation, as this duchy's details record them."""
    protocol = details.WhichOneof("protocol")
    if protocol in ("liquid_legions_v2", "reach_only_liquid_legions_v2"):
        ring = getattr(details, protocol).participants
        return frozenset(p.duchy_id for p in ring)
    if protocol == "honest_majority_share_shuffle":
        hmss = details.honest_majority_share_shuffle
        return frozenset([*hmss.non_aggregators, hmss.aggregator]) - {""}
    return frozenset()


def position(graph: StageGraph, role: int, expected: int, current: int) -> Position:
    """How `current` relates to the WAIT stage `expected`, following `role`'s path."""
    if current == expected:
        return Position.AT
    if graph.is_terminal(current):
        return Position.PAST
    stage = expected
    # The graphs are DAGs, so this walk ends; each step is this role's only way forward.
    for _ in range(len(graph.stages)):
        try:
            stage = graph.next_stage(stage, role).value
        except StageGraphError:
            return Position.NOT_THERE
        if stage == current:
            return Position.PAST
    return Position.NOT_THERE


def output_slot(graph: StageGraph, token: Token, stage: int, data_origin: str) -> BlobMetadata:
    """The OUTPUT slot of the current stage `stage` that `data_origin`'s input fills."""
    outputs = {
        b.blob_id: b for b in token.blobs if b.dependency_type == computation_details_pb2.OUTPUT
    }
    try:
        keyed = graph.entry(stage).outputs_keyed_by_sender
    except StageGraphError as error:
        raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, str(error)) from error
    if keyed:
        blob_id = _peer_blob_ids(token).get(data_origin)
        if blob_id is None:
            raise StatusError(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{data_origin!r} does not send an input for {graph.stage(stage).name}",
            )
        slot = outputs.get(blob_id)
        if slot is None:
            raise StatusError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"stage details name blob {blob_id} for {data_origin!r}, which is no OUTPUT slot",
            )
        return slot
    if len(outputs) != 1:
        raise StatusError(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"{graph.stage(stage).name} has {len(outputs)} OUTPUT slots, expected exactly one",
        )
    return next(iter(outputs.values()))


def _peer_blob_ids(token: Token) -> dict[str, int]:
    details = token.stage_specific_details
    protocol = details.WhichOneof("protocol")
    if protocol is None:
        return {}
    inner = getattr(details, protocol)
    detail = inner.WhichOneof("detail")
    if detail is None:
        return {}
    return dict(getattr(inner, detail).external_duchy_local_blob_id)
