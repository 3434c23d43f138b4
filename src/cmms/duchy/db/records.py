"""Values the repositories take and return. Protocol messages travel as opaque bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum


class BlobDependency(IntEnum):
    """`ComputationBlobDependency`: how a blob slot relates to its stage."""

    UNKNOWN = 0
    INPUT = 1
    OUTPUT = 2
    PASS_THROUGH = 3


class AttemptEndReason(IntEnum):
    """`ComputationStageAttemptDetails.EndReason`."""

    UNSPECIFIED = 0
    SUCCEEDED = 1
    ERROR = 2
    LOCK_OVERWRITTEN = 3
    CANCELLED = 4


class CompletedReason(IntEnum):
    """`ComputationDetails.CompletedReason`: why a computation reached its terminal stage."""

    UNSPECIFIED = 0
    SUCCEEDED = 1
    FAILED = 2
    CANCELED = 3


@dataclass(frozen=True, order=True)
class StageKey:
    """A stage as stored: the protocol number and the protocol's own stage number."""

    protocol: int
    stage: int


@dataclass(frozen=True)
class RequisitionKey:
    external_requisition_id: str
    requisition_fingerprint: bytes


@dataclass(frozen=True)
class NewRequisition:
    key: RequisitionKey
    details: bytes
    details_json: str | None = None


@dataclass(frozen=True)
class BlobRef:
    blob_id: int
    dependency: BlobDependency
    path: str | None


@dataclass(frozen=True)
class RequisitionRecord:
    requisition_id: int
    key: RequisitionKey
    details: bytes
    path: str | None


@dataclass(frozen=True)
class ComputationToken:
    """A snapshot of a computation at its current stage; mutations need the latest `version`.

    `blobs` are the current stage's slots sorted by blob id; `requisitions` are sorted by their
    position in the creation request. `attempt` is the number of the latest attempt at the current
    stage (0 before the first claim).
    """

    local_computation_id: int
    global_computation_id: str
    protocol: int
    stage: int
    attempt: int
    version: int
    computation_details: bytes
    stage_details: bytes
    lock_owner: str | None
    lock_expiration_time: datetime | None
    creation_time: datetime
    update_time: datetime
    blobs: tuple[BlobRef, ...] = ()
    requisitions: tuple[RequisitionRecord, ...] = ()

    @property
    def stage_key(self) -> StageKey:
        return StageKey(self.protocol, self.stage)

    def output_paths(self) -> list[str | None]:
        """Paths of the OUTPUT and PASS_THROUGH slots in blob-id order: the next stage's inputs."""
        return [
            b.path
            for b in self.blobs
            if b.dependency in (BlobDependency.OUTPUT, BlobDependency.PASS_THROUGH)
        ]

    def all_outputs_written(self) -> bool:
        return all(p for p in self.output_paths())


@dataclass(frozen=True)
class StageAttempt:
    stage: int
    attempt: int
    begin_time: datetime
    end_time: datetime | None
    reason_ended: AttemptEndReason | None


@dataclass(frozen=True)
class StageRecord:
    """One stage a computation entered, in the order it entered them."""

    stage: int
    creation_time: datetime
    end_time: datetime | None
    previous_stage: int | None
    following_stage: int | None
    next_attempt: int


@dataclass(frozen=True)
class DeletedComputation:
    """What a deletion removed; the caller deletes these blobs from the blob stores."""

    local_computation_id: int
    global_computation_id: str | None
    computation_blob_paths: tuple[str, ...] = ()
    requisition_blob_paths: tuple[str, ...] = ()

    @property
    def existed(self) -> bool:
        return self.global_computation_id is not None


@dataclass(frozen=True)
class PurgeResult:
    """The computations a purge selected (and, when forced, deleted), with their blob paths."""

    purge_count: int
    global_ids: tuple[str, ...]
    computation_blob_paths: tuple[str, ...] = ()
    requisition_blob_paths: tuple[str, ...] = ()
    deleted: bool = False
    per_computation: tuple[DeletedComputation, ...] = field(default=(), repr=False)
