"""Building AdvanceComputationStage and FinishComputation arguments from a token.

After-transition handling and the number of OUTPUT slots come from the protocol's stage graph,
and the role restriction of the next stage is checked here, before anything is sent
(duchy_internals §1.6).
"""

from __future__ import annotations

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_protocols_pb2,
    computation_token_pb2,
    computations_service_pb2,
)
from cmms.duchy.herald.errors import HeraldError
from cmms.duchy.internal_api.convert import stage_from_proto, stage_to_proto
from cmms.protocols.stages import StageGraph, StageGraphError, stage_graph

Token = computation_token_pb2.ComputationToken


def protocol_and_stage(token: Token) -> tuple[int, int]:
    return stage_from_proto(token.computation_stage)


def graph_of(token: Token) -> StageGraph:
    return stage_graph(protocol_and_stage(token)[0])


def current_stage(token: Token) -> int:
    return protocol_and_stage(token)[1]


def output_paths(token: Token) -> list[str]:
    """Paths of the current stage's OUTPUT and PASS_THROUGH slots in blob order: the inputs of
    the next stage."""
    carried = (computation_details_pb2.OUTPUT, computation_details_pb2.PASS_THROUGH)
    return [
        blob.path
        for blob in sorted(token.blobs, key=lambda b: b.blob_id)
        if blob.dependency_type in carried and blob.path
    ]


def advance_request(
    token: Token, next_stage: int, role: int, *, participant_count: int | None = None
) -> computations_service_pb2.AdvanceComputationStageRequest:
    graph = graph_of(token)
    try:
        graph.check_transition(current_stage(token), next_stage)
        entry = graph.entry(next_stage)
        outputs = entry.output_slot_count(participant_count)
    except (StageGraphError, ValueError) as error:
        raise HeraldError(str(error)) from error
    if not entry.allows_role(role):
        raise HeraldError(
            f"role {role} never enters {graph.protocol.name} stage {graph.stage(next_stage).name}"
        )
    return computations_service_pb2.AdvanceComputationStageRequest(
        token=token,
        next_computation_stage=stage_to_proto(graph.protocol, next_stage),
        input_blobs=output_paths(token),
        output_blobs=outputs,
        after_transition=int(entry.after_transition),  # type: ignore[arg-type]
    )


def terminal_stage(token: Token) -> computation_protocols_pb2.ComputationStage:
    graph = graph_of(token)
    (terminal,) = graph.terminal_stages
    return stage_to_proto(graph.protocol, terminal)


def is_terminal(token: Token) -> bool:
    return graph_of(token).is_terminal(current_stage(token))
