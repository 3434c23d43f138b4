"""What each LLv2 role does in each working stage, as data (spec §4, §5).

A mill looks up `action_for(role, stage)`: which stage function to run, to whom the output goes
(the aggregator, or the next duchy in the ring), under which `AdvanceComputation` description, in
which WAIT stage the receiver must be, and where this duchy goes next (None = the computation
ends for it; with F = 1 the ring also ends after phase two).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from cmms.protocols.liquid_legions.errors import InvalidStageInputError
from cmms.protocols.llv2.stages import Role, Stage


class InputDescription(IntEnum):
    """System `AdvanceComputationRequest.Header.LiquidLegionsV2.Description` numbers."""

    SETUP_PHASE_INPUT = 1
    EXECUTION_PHASE_ONE_INPUT = 2
    EXECUTION_PHASE_TWO_INPUT = 3
    EXECUTION_PHASE_THREE_INPUT = 4


class Recipient(Enum):
    """Who receives a stage's output."""

    AGGREGATOR = "aggregator"
    NEXT_IN_RING = "next_in_ring"
    KINGDOM = "kingdom"


class StageFunction(Enum):
    """The stage functions of this package."""

    SETUP = "setup_phase"
    PHASE_ONE_NON_AGGREGATOR = "execution_phase_one_non_aggregator"
    PHASE_ONE_AGGREGATOR = "execution_phase_one_aggregator"
    PHASE_TWO_NON_AGGREGATOR = "execution_phase_two_non_aggregator"
    PHASE_TWO_AGGREGATOR = "execution_phase_two_aggregator"
    PHASE_THREE_NON_AGGREGATOR = "execution_phase_three_non_aggregator"
    PHASE_THREE_AGGREGATOR = "execution_phase_three_aggregator"


@dataclass(frozen=True)
class StageAction:
    """One role's behaviour in one working stage."""

    role: Role
    stage: Stage
    function: StageFunction
    recipient: Recipient
    description: InputDescription | None
    expected_peer_stage: Stage | None
    next_stage: Stage | None


_A, _W = Role.AGGREGATOR, Role.NON_AGGREGATOR
_D = InputDescription
_S = Stage

ACTIONS: tuple[StageAction, ...] = (
    StageAction(
        _W,
        _S.SETUP_PHASE,
        StageFunction.SETUP,
        Recipient.AGGREGATOR,
        _D.SETUP_PHASE_INPUT,
        _S.WAIT_SETUP_PHASE_INPUTS,
        _S.WAIT_EXECUTION_PHASE_ONE_INPUTS,
    ),
    StageAction(
        _A,
        _S.SETUP_PHASE,
        StageFunction.SETUP,
        Recipient.NEXT_IN_RING,
        _D.EXECUTION_PHASE_ONE_INPUT,
        _S.WAIT_EXECUTION_PHASE_ONE_INPUTS,
        _S.WAIT_EXECUTION_PHASE_ONE_INPUTS,
    ),
    StageAction(
        _W,
        _S.EXECUTION_PHASE_ONE,
        StageFunction.PHASE_ONE_NON_AGGREGATOR,
        Recipient.NEXT_IN_RING,
        _D.EXECUTION_PHASE_ONE_INPUT,
        _S.WAIT_EXECUTION_PHASE_ONE_INPUTS,
        _S.WAIT_EXECUTION_PHASE_TWO_INPUTS,
    ),
    StageAction(
        _A,
        _S.EXECUTION_PHASE_ONE,
        StageFunction.PHASE_ONE_AGGREGATOR,
        Recipient.NEXT_IN_RING,
        _D.EXECUTION_PHASE_TWO_INPUT,
        _S.WAIT_EXECUTION_PHASE_TWO_INPUTS,
        _S.WAIT_EXECUTION_PHASE_TWO_INPUTS,
    ),
    StageAction(
        _W,
        _S.EXECUTION_PHASE_TWO,
        StageFunction.PHASE_TWO_NON_AGGREGATOR,
        Recipient.NEXT_IN_RING,
        _D.EXECUTION_PHASE_TWO_INPUT,
        _S.WAIT_EXECUTION_PHASE_TWO_INPUTS,
        _S.WAIT_EXECUTION_PHASE_THREE_INPUTS,
    ),
    StageAction(
        _A,
        _S.EXECUTION_PHASE_TWO,
        StageFunction.PHASE_TWO_AGGREGATOR,
        Recipient.NEXT_IN_RING,
        _D.EXECUTION_PHASE_THREE_INPUT,
        _S.WAIT_EXECUTION_PHASE_THREE_INPUTS,
        _S.WAIT_EXECUTION_PHASE_THREE_INPUTS,
    ),
    StageAction(
        _W,
        _S.EXECUTION_PHASE_THREE,
        StageFunction.PHASE_THREE_NON_AGGREGATOR,
        Recipient.NEXT_IN_RING,
        _D.EXECUTION_PHASE_THREE_INPUT,
        _S.WAIT_EXECUTION_PHASE_THREE_INPUTS,
        None,
    ),
    StageAction(
        _A,
        _S.EXECUTION_PHASE_THREE,
        StageFunction.PHASE_THREE_AGGREGATOR,
        Recipient.KINGDOM,
        None,
        None,
        None,
    ),
)

_BY_KEY = {(a.role, a.stage): a for a in ACTIONS}


def action_for(role: Role, stage: Stage) -> StageAction:
    """The action of `role` in the working `stage`; raises for stages that do no protocol work."""
    found = _BY_KEY.get((role, stage))
    if found is None:
        raise InvalidStageInputError(f"LLv2 {role.name} does no protocol work in {stage.name}")
    return found


def finishes_after_phase_two(max_frequency: int) -> bool:
    """With F = 1 there is no phase three: every duchy finishes after phase two (pitfall 9)."""
    return max_frequency == 1
