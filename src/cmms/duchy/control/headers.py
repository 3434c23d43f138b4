"""What a peer's AdvanceComputation header announces: the computation, its protocol, the local
WAIT stage that expects the input, and the record size its body must be a multiple of
(duchy_internals §5.1)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cmms.api.system.v1 import computation_control_pb2
from cmms.protocols.hmss.stages import Stage as HmssStage
from cmms.protocols.liquid_legions.records import (
    REACH_ONLY_REGISTER_SIZE,
    REGISTER_SIZE,
    SKA_ENTRY_SIZE,
    TUPLE_SIZE,
)
from cmms.protocols.llv2.stages import Stage as Llv2Stage
from cmms.protocols.reach_only_llv2.stages import Stage as ReachOnlyStage
from cmms.protocols.stages import ProtocolType

Header = computation_control_pb2.AdvanceComputationRequest.Header

_COMPUTATION_NAME = re.compile(r"computations/([A-Za-z0-9_\-=.~+]+)")
_STAGE_NAME = re.compile(
    r"computations/([A-Za-z0-9_\-=.~+]+)/participants/([a-z][a-z0-9-]*)/computationStage"
)


@dataclass(frozen=True)
class ExpectedInput:
    stage: int
    # None: the body has no fixed-size records (HMSS payloads are protobuf messages).
    record_size: int | None


# header oneof member -> (protocol, description number -> expected input)
_INPUTS: dict[str, tuple[int, dict[int, ExpectedInput]]] = {
    "liquid_legions_v2": (
        ProtocolType.LIQUID_LEGIONS_V2,
        {
            1: ExpectedInput(Llv2Stage.WAIT_SETUP_PHASE_INPUTS, REGISTER_SIZE),
            2: ExpectedInput(Llv2Stage.WAIT_EXECUTION_PHASE_ONE_INPUTS, REGISTER_SIZE),
            3: ExpectedInput(Llv2Stage.WAIT_EXECUTION_PHASE_TWO_INPUTS, TUPLE_SIZE),
            4: ExpectedInput(Llv2Stage.WAIT_EXECUTION_PHASE_THREE_INPUTS, SKA_ENTRY_SIZE),
        },
    ),
    "reach_only_liquid_legions_v2": (
        ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2,
        {
            1: ExpectedInput(ReachOnlyStage.WAIT_SETUP_PHASE_INPUTS, REACH_ONLY_REGISTER_SIZE),
            2: ExpectedInput(ReachOnlyStage.WAIT_EXECUTION_PHASE_INPUTS, REACH_ONLY_REGISTER_SIZE),
        },
    ),
    "honest_majority_share_shuffle": (
        ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE,
        {
            1: ExpectedInput(HmssStage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE, None),
            2: ExpectedInput(HmssStage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO, None),
            3: ExpectedInput(HmssStage.WAIT_ON_AGGREGATION_INPUT, None),
        },
    ),
}

# Protocol number -> the member of the system ComputationStage oneof showing its stage.
SYSTEM_STAGE_FIELDS: dict[int, str] = {
    ProtocolType.LIQUID_LEGIONS_V2: "liquid_legions_v2",
    ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2: "reach_only_liquid_legions_v2",
    ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE: "honest_majority_share_shuffle",
}


class HeaderError(ValueError):
    """The header is malformed or names no known input (INVALID_ARGUMENT)."""


@dataclass(frozen=True)
class AnnouncedInput:
    global_computation_id: str
    protocol: int
    expected: ExpectedInput


def parse_header(header: Header) -> AnnouncedInput:
    match = _COMPUTATION_NAME.fullmatch(header.name)
    if match is None:
        raise HeaderError(f"{header.name!r} is not a computation name 'computations/{{id}}'")
    member = header.WhichOneof("protocol")
    if member is None:
        raise HeaderError("the header names no protocol")
    protocol, inputs = _INPUTS[member]
    description = getattr(header, member).description
    expected = inputs.get(description)
    if expected is None:
        raise HeaderError(f"description {description} is not a known {member} input")
    return AnnouncedInput(match.group(1), protocol, expected)


def parse_stage_name(name: str) -> tuple[str, str]:
    """`(global id, duchy id)` of `computations/{gid}/participants/{duchy}/computationStage`."""
    match = _STAGE_NAME.fullmatch(name)
    if match is None:
        raise HeaderError(
            f"{name!r} is not 'computations/{{id}}/participants/{{duchy}}/computationStage'"
        )
    return match.group(1), match.group(2)
