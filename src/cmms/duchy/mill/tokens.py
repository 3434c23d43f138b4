"""Reading a `ComputationToken`: protocol, stage, role, blob slots and requisitions.

Only the internal proto is read here; nothing talks to a server.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cmms.api.internal.duchy.v1 import computation_details_pb2, computation_token_pb2
from cmms.duchy.mill.errors import PermanentError
from cmms.protocols.stages import ProtocolType, StageGraph, stage_graph

Token = computation_token_pb2.ComputationToken
BlobMetadata = computation_token_pb2.ComputationStageBlobMetadata
RequisitionMetadata = computation_token_pb2.RequisitionMetadata
ComputationDetails = computation_details_pb2.ComputationDetails

# The `ComputationStage` (and `ComputationDetails.protocol`) oneof member of each protocol.
PROTOCOL_FIELDS: dict[ProtocolType, str] = {
    ProtocolType.LIQUID_LEGIONS_V2: "liquid_legions_v2",
    ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2: "reach_only_liquid_legions_v2",
    ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE: "honest_majority_share_shuffle",
    ProtocolType.TRUS_TEE: "trus_tee",
}
_PROTOCOL_OF_FIELD = {field: protocol for protocol, field in PROTOCOL_FIELDS.items()}


def protocol_of(token: Token) -> ProtocolType:
    field = token.computation_stage.WhichOneof("stage")
    if field is None:
        raise PermanentError(f"computation {token.global_computation_id} has no stage")
    return _PROTOCOL_OF_FIELD[field]


def stage_of(token: Token) -> int:
    protocol = protocol_of(token)
    stage: int = getattr(token.computation_stage, PROTOCOL_FIELDS[protocol])
    return stage


def graph_of(token: Token) -> StageGraph:
    return stage_graph(protocol_of(token))


def stage_name(token: Token) -> str:
    return graph_of(token).stage(stage_of(token)).name


def protocol_details(token: Token) -> Any:
    """The protocol member of the computation details (e.g. `HonestMajorityShareShuffle.ComputationDetails`)."""
    details = token.computation_details
    field = PROTOCOL_FIELDS[protocol_of(token)]
    if details.WhichOneof("protocol") != field:
        raise PermanentError(f"computation {token.global_computation_id} has no {field} details")
    return getattr(details, field)


def role_of(token: Token) -> int:
    role: int = protocol_details(token).role
    return role


def output_slots(token: Token) -> list[BlobMetadata]:
    """OUTPUT slots of the current stage, by blob id."""
    return sorted(
        (b for b in token.blobs if b.dependency_type == computation_details_pb2.OUTPUT),
        key=lambda b: b.blob_id,
    )


def input_paths(token: Token) -> list[str]:
    """Paths of the current stage's INPUT slots, by blob id."""
    inputs = [b for b in token.blobs if b.dependency_type == computation_details_pb2.INPUT]
    return [b.path for b in sorted(inputs, key=lambda b: b.blob_id)]


def output_paths(token: Token) -> list[str]:
    """Paths of every OUTPUT and PASS_THROUGH slot, by blob id: the next stage's inputs."""
    carried = (computation_details_pb2.OUTPUT, computation_details_pb2.PASS_THROUGH)
    slots = sorted(
        (b for b in token.blobs if b.dependency_type in carried), key=lambda b: b.blob_id
    )
    return [b.path for b in slots]


def fulfilled_here(token: Token) -> list[RequisitionMetadata]:
    """Requisitions whose data is stored at this duchy, in creation order."""
    return [r for r in token.requisitions if r.path]


def lock_expiration(token: Token) -> datetime | None:
    if not token.HasField("lock_expiration_time"):
        return None
    return token.lock_expiration_time.ToDatetime(tzinfo=UTC)


def holds_lock(token: Token, owner: str, now: datetime) -> bool:
    """Whether `owner` holds an unexpired work lock on the computation."""
    expires = lock_expiration(token)
    return token.lock_owner == owner and expires is not None and expires > now


def external_ids(requisitions: Sequence[RequisitionMetadata]) -> list[str]:
    return [r.external_key.external_requisition_id for r in requisitions]
