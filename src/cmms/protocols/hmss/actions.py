"""What each HMSS role does in each stage, as data (spec §A.2 steps 1-6).

A mill looks up `action_for(role, stage)` to know which stage function to run, which peer gets
the output, as which `AdvanceComputation` input description, which stage the peer must be in to
accept it, and where this duchy goes next.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum

from cmms.crypto.randomness import RandomSource
from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.hmss.aggregation_phase import (
    AggregationPhaseRequest,
    ReachAndFrequencyResult,
    ReachResult,
    complete_reach_and_frequency_aggregation_phase,
    complete_reach_only_aggregation_phase,
)
from cmms.protocols.hmss.parameters import MeasurementType
from cmms.protocols.hmss.shuffle_phase import (
    ShufflePhaseRequest,
    ShufflePhaseResponse,
    complete_reach_and_frequency_shuffle_phase,
    complete_reach_only_shuffle_phase,
)
from cmms.protocols.hmss.stages import Role, Stage


class InputDescription(IntEnum):
    """System `AdvanceComputationRequest.Header.HonestMajorityShareShuffle.Description` numbers."""

    SHUFFLE_PHASE_INPUT_ONE = 1
    SHUFFLE_PHASE_INPUT_TWO = 2
    AGGREGATION_PHASE_INPUT = 3


class StageFunction(Enum):
    """The work a stage does."""

    SEND_REQUISITION_PARAMS = "send_requisition_params"
    WAIT = "wait"
    SETUP = "setup"
    SHUFFLE = "shuffle"
    AGGREGATE = "aggregate"


@dataclass(frozen=True)
class StageAction:
    """One role's behaviour in one stage."""

    role: Role
    stage: Stage
    function: StageFunction
    input_description: InputDescription | None = None
    recipient: Role | None = None
    description: InputDescription | None = None
    expected_peer_stage: Stage | None = None
    next_stage: Stage | None = None


_W1, _W2, _A = Role.FIRST_NON_AGGREGATOR, Role.SECOND_NON_AGGREGATOR, Role.AGGREGATOR
_F = StageFunction

ACTIONS: tuple[StageAction, ...] = (
    StageAction(_W1, Stage.INITIALIZED, _F.SEND_REQUISITION_PARAMS, next_stage=Stage.WAIT_TO_START),
    StageAction(
        _W2,
        Stage.INITIALIZED,
        _F.SEND_REQUISITION_PARAMS,
        next_stage=Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE,
    ),
    StageAction(
        _A,
        Stage.INITIALIZED,
        _F.SEND_REQUISITION_PARAMS,
        next_stage=Stage.WAIT_ON_AGGREGATION_INPUT,
    ),
    StageAction(_W1, Stage.WAIT_TO_START, _F.WAIT, next_stage=Stage.SETUP_PHASE),
    StageAction(
        _W2,
        Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE,
        _F.WAIT,
        input_description=InputDescription.SHUFFLE_PHASE_INPUT_ONE,
        next_stage=Stage.SETUP_PHASE,
    ),
    StageAction(
        _W1,
        Stage.SETUP_PHASE,
        _F.SETUP,
        recipient=_W2,
        description=InputDescription.SHUFFLE_PHASE_INPUT_ONE,
        expected_peer_stage=Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE,
        next_stage=Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO,
    ),
    StageAction(
        _W2,
        Stage.SETUP_PHASE,
        _F.SETUP,
        recipient=_W1,
        description=InputDescription.SHUFFLE_PHASE_INPUT_TWO,
        expected_peer_stage=Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO,
        next_stage=Stage.SHUFFLE_PHASE,
    ),
    StageAction(
        _W1,
        Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO,
        _F.WAIT,
        input_description=InputDescription.SHUFFLE_PHASE_INPUT_TWO,
        next_stage=Stage.SHUFFLE_PHASE,
    ),
    *(
        StageAction(
            worker,
            Stage.SHUFFLE_PHASE,
            _F.SHUFFLE,
            recipient=_A,
            description=InputDescription.AGGREGATION_PHASE_INPUT,
            expected_peer_stage=Stage.WAIT_ON_AGGREGATION_INPUT,
            next_stage=Stage.COMPLETE,
        )
        for worker in (_W1, _W2)
    ),
    StageAction(
        _A,
        Stage.WAIT_ON_AGGREGATION_INPUT,
        _F.WAIT,
        input_description=InputDescription.AGGREGATION_PHASE_INPUT,
        next_stage=Stage.AGGREGATION_PHASE,
    ),
    StageAction(_A, Stage.AGGREGATION_PHASE, _F.AGGREGATE, next_stage=Stage.COMPLETE),
)

_BY_KEY = {(action.role, action.stage): action for action in ACTIONS}


def action_for(role: Role, stage: Stage) -> StageAction:
    """The action of `role` in `stage`; `InvalidProtocolInputError` if the role never runs it."""
    found = _BY_KEY.get((role, stage))
    if found is None:
        raise InvalidProtocolInputError(f"HMSS role {role.name} has nothing to do in {stage.name}")
    return found


def stage_receiving(description: InputDescription) -> tuple[Role, Stage]:
    """The role and wait stage that accept an input with `description`."""
    for action in ACTIONS:
        if action.input_description is description:
            return action.role, action.stage
    raise InvalidProtocolInputError(f"no HMSS stage accepts {description.name}")


ShuffleFunction = Callable[[ShufflePhaseRequest, RandomSource], ShufflePhaseResponse]
AggregationFunction = Callable[[AggregationPhaseRequest], ReachResult | ReachAndFrequencyResult]


def shuffle_function(measurement_type: MeasurementType) -> ShuffleFunction:
    """The SHUFFLE_PHASE function of the measurement type (reach-only or R&F)."""
    if measurement_type is MeasurementType.REACH:
        return complete_reach_only_shuffle_phase
    return complete_reach_and_frequency_shuffle_phase


def aggregation_function(measurement_type: MeasurementType) -> AggregationFunction:
    """The AGGREGATION_PHASE function of the measurement type (reach-only or R&F)."""
    if measurement_type is MeasurementType.REACH:
        return complete_reach_only_aggregation_phase
    return complete_reach_and_frequency_aggregation_phase
