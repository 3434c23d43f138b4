"""What each reach-only LLv2 role does in each working stage, as data (spec §4, §5R).

See `cmms.protocols.llv2.actions` for how a mill reads these rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from cmms.protocols.liquid_legions.errors import InvalidStageInputError
from cmms.protocols.llv2.actions import Recipient
from cmms.protocols.reach_only_llv2.stages import Role, Stage


class InputDescription(IntEnum):
    """System `AdvanceComputationRequest.Header.ReachOnlyLiquidLegionsV2.Description` numbers."""

    SETUP_PHASE_INPUT = 1
    EXECUTION_PHASE_INPUT = 2


class StageFunction(Enum):
    """The stage functions of this package."""

    SETUP = "setup_phase"
    EXECUTION_NON_AGGREGATOR = "execution_phase_non_aggregator"
    EXECUTION_AGGREGATOR = "execution_phase_aggregator"


@dataclass(frozen=True)
class StageAction:
    """One role's behaviour in one working stage (next_stage None = the computation ends)."""

    role: Role
    stage: Stage
    function: StageFunction
    recipient: Recipient
    description: InputDescription | None
    expected_peer_stage: Stage | None
    next_stage: Stage | None


ACTIONS: tuple[StageAction, ...] = (
    StageAction(
        Role.NON_AGGREGATOR,
        Stage.SETUP_PHASE,
        StageFunction.SETUP,
        Recipient.AGGREGATOR,
        InputDescription.SETUP_PHASE_INPUT,
        Stage.WAIT_SETUP_PHASE_INPUTS,
        Stage.WAIT_EXECUTION_PHASE_INPUTS,
    ),
    StageAction(
        Role.AGGREGATOR,
        Stage.SETUP_PHASE,
        StageFunction.SETUP,
        Recipient.NEXT_IN_RING,
        InputDescription.EXECUTION_PHASE_INPUT,
        Stage.WAIT_EXECUTION_PHASE_INPUTS,
        Stage.WAIT_EXECUTION_PHASE_INPUTS,
    ),
    StageAction(
        Role.NON_AGGREGATOR,
        Stage.EXECUTION_PHASE,
        StageFunction.EXECUTION_NON_AGGREGATOR,
        Recipient.NEXT_IN_RING,
        InputDescription.EXECUTION_PHASE_INPUT,
        Stage.WAIT_EXECUTION_PHASE_INPUTS,
        None,
    ),
    StageAction(
        Role.AGGREGATOR,
        Stage.EXECUTION_PHASE,
        StageFunction.EXECUTION_AGGREGATOR,
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
        raise InvalidStageInputError(
            f"reach-only LLv2 {role.name} does no protocol work in {stage.name}"
        )
    return found
