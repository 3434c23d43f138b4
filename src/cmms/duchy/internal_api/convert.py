"""Proto <-> repository conversion for the internal API, in one place.

The repository speaks `(protocol, stage)` numbers and serialized details; the wire speaks the
`ComputationStage` oneof and parsed messages. Every duchy component that reads tokens over gRPC
(async control, computation control, fulfilment) uses these helpers too.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_protocols_pb2,
    computation_token_pb2,
)
from cmms.duchy.db import BlobDependency, ComputationToken, RequisitionKey, RequisitionRecord
from cmms.protocols.stages import StageGraph, StageGraphError, stage_graph

# The `ComputationStage` oneof member of each protocol number.
STAGE_FIELDS: dict[int, str] = {
    1: "liquid_legions_v2",
    2: "reach_only_liquid_legions_v2",
    3: "honest_majority_share_shuffle",
    4: "trus_tee",
}
_PROTOCOL_OF_FIELD = {name: protocol for protocol, name in STAGE_FIELDS.items()}

_DEPENDENCY = {
    BlobDependency.UNKNOWN: computation_details_pb2.COMPUTATION_BLOB_DEPENDENCY_UNSPECIFIED,
    BlobDependency.INPUT: computation_details_pb2.INPUT,
    BlobDependency.OUTPUT: computation_details_pb2.OUTPUT,
    BlobDependency.PASS_THROUGH: computation_details_pb2.PASS_THROUGH,
}

# Only identity, version, stage and attempt of a request token matter to the repository.
_UNUSED_TIME = datetime.fromtimestamp(0, UTC)


class ConversionError(ValueError):
    """A request message cannot be turned into repository values (INVALID_ARGUMENT)."""


def stage_to_proto(protocol: int, stage: int) -> computation_protocols_pb2.ComputationStage:
    message = computation_protocols_pb2.ComputationStage()
    field = STAGE_FIELDS.get(protocol)
    if field is None:
        raise ConversionError(f"unknown protocol {protocol}")
    setattr(message, field, stage)
    return message


def stage_from_proto(message: computation_protocols_pb2.ComputationStage) -> tuple[int, int]:
    """`(protocol, stage)`; raises `ConversionError` when unset or not a stage of the protocol."""
    field = message.WhichOneof("stage")
    if field is None:
        raise ConversionError("computation stage is not set")
    protocol = _PROTOCOL_OF_FIELD[field]
    stage = int(getattr(message, field))
    try:
        stage_graph(protocol).stage(stage)
    except StageGraphError as error:
        raise ConversionError(str(error)) from error
    return protocol, stage


def stage_name(protocol: int, stage: int) -> str:
    return stage_graph(protocol).stage(stage).name


def graph_of(token: computation_token_pb2.ComputationToken) -> StageGraph:
    protocol, _ = stage_from_proto(token.computation_stage)
    return stage_graph(protocol)


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def requisition_key_to_proto(key: RequisitionKey) -> computation_details_pb2.ExternalRequisitionKey:
    return computation_details_pb2.ExternalRequisitionKey(
        external_requisition_id=key.external_requisition_id,
        requisition_fingerprint=key.requisition_fingerprint,
    )


def requisition_key_from_proto(
    message: computation_details_pb2.ExternalRequisitionKey,
) -> RequisitionKey:
    return RequisitionKey(message.external_requisition_id, bytes(message.requisition_fingerprint))


def _requisition_to_proto(record: RequisitionRecord) -> computation_token_pb2.RequisitionMetadata:
    return computation_token_pb2.RequisitionMetadata(
        external_key=requisition_key_to_proto(record.key),
        path=record.path or "",
        details=computation_details_pb2.RequisitionDetails.FromString(record.details),
    )


def token_to_proto(token: ComputationToken) -> computation_token_pb2.ComputationToken:
    message = computation_token_pb2.ComputationToken(
        local_computation_id=token.local_computation_id,
        global_computation_id=token.global_computation_id,
        computation_stage=stage_to_proto(token.protocol, token.stage),
        attempt=token.attempt,
        version=token.version,
        computation_details=computation_details_pb2.ComputationDetails.FromString(
            token.computation_details
        ),
        stage_specific_details=computation_details_pb2.ComputationStageDetails.FromString(
            token.stage_details
        ),
        blobs=[
            computation_token_pb2.ComputationStageBlobMetadata(
                blob_id=blob.blob_id,
                dependency_type=_DEPENDENCY[blob.dependency],
                path=blob.path or "",
            )
            for blob in token.blobs
        ],
        requisitions=[_requisition_to_proto(r) for r in token.requisitions],
        lock_owner=token.lock_owner or "",
    )
    if token.lock_expiration_time is not None:
        message.lock_expiration_time.CopyFrom(_timestamp(token.lock_expiration_time))
    return message


def edit_token_from_proto(message: computation_token_pb2.ComputationToken) -> ComputationToken:
    """The repository token a mutation request carries: id, version, stage and attempt.

    Blobs, requisitions and details are not copied: the repository re-reads the stored row and
    uses the request token only to check the version and the transition's starting stage.
    """
    if message.local_computation_id == 0:
        raise ConversionError("token.local_computation_id is required")
    protocol, stage = stage_from_proto(message.computation_stage)
    return ComputationToken(
        local_computation_id=message.local_computation_id,
        global_computation_id=message.global_computation_id,
        protocol=protocol,
        stage=stage,
        attempt=message.attempt,
        version=message.version,
        computation_details=b"",
        stage_details=b"",
        lock_owner=message.lock_owner or None,
        lock_expiration_time=None,
        creation_time=_UNUSED_TIME,
        update_time=_UNUSED_TIME,
    )


def output_paths(token: computation_token_pb2.ComputationToken) -> list[str]:
    """Paths of the OUTPUT and PASS_THROUGH slots in blob-id order ("" where unwritten)."""
    kinds = (computation_details_pb2.OUTPUT, computation_details_pb2.PASS_THROUGH)
    return [
        b.path for b in sorted(token.blobs, key=lambda b: b.blob_id) if b.dependency_type in kinds
    ]
