"""What the single TrusTee role does in each stage, as data (spec §B.2)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.trustee.stages import Role, Stage


class StageFunction(Enum):
    """The work a stage does."""

    SEND_REQUISITION_PARAMS = "send_requisition_params"
    WAIT = "wait"
    COMPUTE = "compute"


@dataclass(frozen=True)
class StageAction:
    """The aggregator's behaviour in one stage; TrusTee sends nothing to other duchies."""

    role: Role
    stage: Stage
    function: StageFunction
    next_stage: Stage


ACTIONS: tuple[StageAction, ...] = (
    StageAction(
        Role.AGGREGATOR,
        Stage.INITIALIZED,
        StageFunction.SEND_REQUISITION_PARAMS,
        Stage.WAIT_TO_START,
    ),
    StageAction(Role.AGGREGATOR, Stage.WAIT_TO_START, StageFunction.WAIT, Stage.COMPUTING),
    StageAction(Role.AGGREGATOR, Stage.COMPUTING, StageFunction.COMPUTE, Stage.COMPLETE),
)

_BY_STAGE = {action.stage: action for action in ACTIONS}


def action_for(stage: Stage) -> StageAction:
    """The aggregator's action in `stage`."""
    found = _BY_STAGE.get(stage)
    if found is None:
        raise InvalidProtocolInputError(f"TrusTee has nothing to do in {stage.name}")
    return found
