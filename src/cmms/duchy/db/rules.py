"""Argument and stage rules of the computations repository that do not depend on a backend.

The SQLAlchemy repository states them inline; backends added later (Spanner) take them from here,
so that the conformance suite sees identical errors from each.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from cmms.duchy.db.errors import (
    IllegalStageTransitionError,
    InitialStageInvalidError,
    InvalidArgumentError,
)
from cmms.duchy.db.records import (
    AttemptEndReason,
    BlobDependency,
    CompletedReason,
    ComputationToken,
    NewRequisition,
    StageKey,
)
from cmms.protocols.stages import (
    AfterTransition,
    IllegalTransitionError,
    StageGraph,
    StageGraphError,
    UnknownProtocolError,
    stage_graph,
)

ATTEMPT_REASON = {
    CompletedReason.SUCCEEDED: AttemptEndReason.SUCCEEDED,
    CompletedReason.FAILED: AttemptEndReason.ERROR,
    CompletedReason.CANCELED: AttemptEndReason.CANCELLED,
}


def graph_of(protocol: int) -> StageGraph:
    try:
        return stage_graph(protocol)
    except UnknownProtocolError as error:
        raise InvalidArgumentError(str(error)) from error


def one_protocol(stages: Collection[StageKey]) -> tuple[int, list[int]]:
    protocols = {s.protocol for s in stages}
    if len(protocols) != 1:
        raise InvalidArgumentError("stages must be given, all of one protocol")
    return protocols.pop(), sorted({s.stage for s in stages})


def initial_stage_for_create(
    global_computation_id: str,
    protocol: int,
    initial_stage: int | None,
    requisitions: Sequence[NewRequisition],
) -> int:
    """The stage a new computation starts in, after checking the creation arguments."""
    if not global_computation_id:
        raise InvalidArgumentError("global_computation_id is required")
    graph = graph_of(protocol)
    stage = graph.initial_stage.value if initial_stage is None else initial_stage
    if not graph.is_initial(stage):
        raise InitialStageInvalidError(
            f"stage {stage} is not an initial stage of {graph.protocol.name}"
        )
    keys = [r.key for r in requisitions]
    if len(set(keys)) != len(keys):
        raise InvalidArgumentError("the same requisition key is listed twice")
    return stage


def lock_extension_for_advance(
    token: ComputationToken,
    next_stage: int,
    after_transition: AfterTransition,
    paths: Sequence[str],
    output_blob_count: int,
    lock_extension: timedelta | None,
    default_lock_duration: timedelta,
) -> timedelta:
    """Check an advance request against the stage graph; the lock extension it implies."""
    graph = graph_of(token.protocol)
    try:
        graph.check_transition(token.stage, next_stage)
    except IllegalTransitionError as error:
        raise IllegalStageTransitionError(str(error)) from error
    except StageGraphError as error:
        raise InvalidArgumentError(str(error)) from error
    if graph.is_terminal(next_stage):
        raise IllegalStageTransitionError(
            f"{graph.stage(next_stage).name} is terminal: end computations with finish"
        )
    if after_transition == AfterTransition.UNSPECIFIED:
        raise InvalidArgumentError("after_transition must be specified")
    if output_blob_count < 0:
        raise InvalidArgumentError("output_blob_count must not be negative")
    if any(not p for p in paths):
        raise InvalidArgumentError("input and pass-through blob paths must not be blank")
    extension = default_lock_duration if lock_extension is None else lock_extension
    if extension <= timedelta(0):
        raise InvalidArgumentError("lock_extension must be positive")
    return extension


def lock_after_advance(
    after_transition: AfterTransition, owner: str | None, now: datetime, extension: timedelta
) -> tuple[str | None, datetime | None]:
    """(lock owner, lock expiration) of a computation that just entered a new stage."""
    if after_transition == AfterTransition.DO_NOT_ADD_TO_QUEUE:
        return None, None
    if after_transition == AfterTransition.ADD_UNCLAIMED_TO_QUEUE:
        return None, now
    return owner, now + extension


def blob_slots(
    input_blob_paths: Sequence[str], pass_through_blob_paths: Sequence[str], output_blob_count: int
) -> list[tuple[BlobDependency, str | None]]:
    """A new stage's blob slots in blob-id order: inputs, pass-throughs, then empty outputs."""
    slots: list[tuple[BlobDependency, str | None]]
    slots = [(BlobDependency.INPUT, p) for p in input_blob_paths]
    slots += [(BlobDependency.PASS_THROUGH, p) for p in pass_through_blob_paths]
    slots += [(BlobDependency.OUTPUT, None)] * output_blob_count
    return slots


def check_finish(token: ComputationToken, ending_stage: int, reason: CompletedReason) -> None:
    graph = graph_of(token.protocol)
    if not graph.is_terminal(ending_stage):
        raise InvalidArgumentError(
            f"stage {ending_stage} is not a terminal stage of {graph.protocol.name}"
        )
    if reason not in ATTEMPT_REASON:
        raise InvalidArgumentError(f"{reason!r} is not a reason to finish a computation")


def lock_duration_for_claim(
    owner: str, lock_duration: timedelta | None, default_lock_duration: timedelta
) -> timedelta:
    if not owner:
        raise InvalidArgumentError("owner is required")
    duration = default_lock_duration if lock_duration is None else lock_duration
    if duration <= timedelta(0):
        raise InvalidArgumentError("lock_duration must be positive")
    return duration


def terminal_stages_for_purge(stages: Collection[StageKey]) -> tuple[int, list[int]]:
    protocol, numbers = one_protocol(stages)
    graph = graph_of(protocol)
    for number in numbers:
        if not graph.is_terminal(number):
            raise InvalidArgumentError(
                f"stage {number} is not a terminal stage of {graph.protocol.name}"
            )
    return protocol, numbers
