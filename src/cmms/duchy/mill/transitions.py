"""Building AdvanceComputationStage requests from the stage graphs (duchy_internals §1.6).

The request carries what the graph says about entering the next stage: the queue handling, the
number of OUTPUT slots, and for stages that take one input per peer, the sender -> slot map. The
role restriction is checked here, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Sequence

from cmms.api.internal.duchy.protocol.v1 import common_pb2, hmss_pb2, llv2_pb2, reach_only_llv2_pb2
from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.duchy.mill.computations import AdvanceRequest
from cmms.duchy.mill.errors import PermanentError
from cmms.duchy.mill.tokens import Token, graph_of, protocol_details, protocol_of, role_of
from cmms.duchy.stage_messages import computation_stage
from cmms.protocols.stages import ProtocolType

StageDetails = computation_details_pb2.ComputationStageDetails


def advance_request(
    token: Token,
    next_stage: int,
    inputs: Sequence[str],
    pass_through: Sequence[str] = (),
) -> AdvanceRequest:
    """The request moving `token`'s computation to `next_stage` with these input paths."""
    graph = graph_of(token)
    entry = graph.entry(next_stage)
    role = role_of(token)
    if not entry.allows_role(role):
        raise PermanentError(
            f"role {role} may not enter {graph.stage(next_stage).name} "
            f"({graph.protocol.name} computation {token.global_computation_id})"
        )
    senders = (
        _senders(token)
        if entry.one_output_per_other_participant or entry.outputs_keyed_by_sender
        else []
    )
    outputs = (
        entry.output_slot_count(len(senders) + 1)
        if entry.one_output_per_other_participant
        else entry.output_slots
    )
    request = AdvanceRequest(
        token=token,
        next_computation_stage=computation_stage(graph.protocol, next_stage),
        input_blobs=inputs,
        pass_through_blobs=pass_through,
        output_blobs=outputs,
        after_transition=int(entry.after_transition),  # type: ignore[arg-type]
    )
    if entry.outputs_keyed_by_sender:
        first_output = len(inputs) + len(pass_through)
        slots = {sender: first_output + i for i, sender in enumerate(senders)}
        request.stage_details.CopyFrom(_peer_stage_details(graph.protocol, slots))
    return request


def _senders(token: Token) -> list[str]:
    """The peers that each send one input to a stage keyed by sender, in slot order."""
    protocol = protocol_of(token)
    details = protocol_details(token)
    if protocol is ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE:
        return list(details.non_aggregators)
    if protocol in (ProtocolType.LIQUID_LEGIONS_V2, ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2):
        ring = [p.duchy_id for p in details.participants]
        if not ring:
            raise PermanentError(
                f"computation {token.global_computation_id} has no participant list yet"
            )
        # The aggregator is last in the ring; every other participant sends one input.
        return ring[:-1]
    return []


def _peer_stage_details(protocol: ProtocolType, slots: dict[str, int]) -> StageDetails:
    peers = common_pb2.PeerInputBlobs(external_duchy_local_blob_id=slots)
    if protocol is ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE:
        return StageDetails(
            honest_majority_share_shuffle=hmss_pb2.HonestMajorityShareShuffle.StageDetails(
                wait_on_aggregation_input=peers
            )
        )
    if protocol is ProtocolType.LIQUID_LEGIONS_V2:
        return StageDetails(
            liquid_legions_v2=llv2_pb2.LiquidLegionsV2.StageDetails(wait_setup_phase_inputs=peers)
        )
    return StageDetails(
        reach_only_liquid_legions_v2=reach_only_llv2_pb2.ReachOnlyLiquidLegionsV2.StageDetails(
            wait_setup_phase_inputs=peers
        )
    )
