"""LLv2 (reach and frequency) stages: numbers, transitions and how each stage is entered."""

from __future__ import annotations

from enum import IntEnum

from cmms.protocols.stages import AfterTransition, ProtocolType, StageEntry, StageGraph


class Stage(IntEnum):
    STAGE_UNSPECIFIED = 0
    INITIALIZATION_PHASE = 1
    WAIT_REQUISITIONS_AND_KEY_SET = 2
    CONFIRMATION_PHASE = 3
    WAIT_TO_START = 4
    WAIT_SETUP_PHASE_INPUTS = 5
    SETUP_PHASE = 6
    WAIT_EXECUTION_PHASE_ONE_INPUTS = 7
    EXECUTION_PHASE_ONE = 8
    WAIT_EXECUTION_PHASE_TWO_INPUTS = 9
    EXECUTION_PHASE_TWO = 10
    WAIT_EXECUTION_PHASE_THREE_INPUTS = 11
    EXECUTION_PHASE_THREE = 12
    COMPLETE = 13


class Role(IntEnum):
    AGGREGATOR = 1
    NON_AGGREGATOR = 2


_QUEUE = AfterTransition.ADD_UNCLAIMED_TO_QUEUE
_WAIT = AfterTransition.DO_NOT_ADD_TO_QUEUE

GRAPH = StageGraph(
    protocol=ProtocolType.LIQUID_LEGIONS_V2,
    stage_enum=Stage,
    role_enum=Role,
    initial_stages=(Stage.INITIALIZATION_PHASE,),
    terminal_stages=frozenset({Stage.COMPLETE}),
    wait_stages=frozenset(
        {
            Stage.WAIT_REQUISITIONS_AND_KEY_SET,
            Stage.WAIT_TO_START,
            Stage.WAIT_SETUP_PHASE_INPUTS,
            Stage.WAIT_EXECUTION_PHASE_ONE_INPUTS,
            Stage.WAIT_EXECUTION_PHASE_TWO_INPUTS,
            Stage.WAIT_EXECUTION_PHASE_THREE_INPUTS,
        }
    ),
    # EXECUTION_PHASE_THREE has no successor: computations end only through Finish.
    successors={
        Stage.INITIALIZATION_PHASE: frozenset({Stage.WAIT_REQUISITIONS_AND_KEY_SET}),
        Stage.WAIT_REQUISITIONS_AND_KEY_SET: frozenset({Stage.CONFIRMATION_PHASE}),
        Stage.CONFIRMATION_PHASE: frozenset({Stage.WAIT_TO_START, Stage.WAIT_SETUP_PHASE_INPUTS}),
        Stage.WAIT_TO_START: frozenset({Stage.SETUP_PHASE}),
        Stage.WAIT_SETUP_PHASE_INPUTS: frozenset({Stage.SETUP_PHASE}),
        Stage.SETUP_PHASE: frozenset({Stage.WAIT_EXECUTION_PHASE_ONE_INPUTS}),
        Stage.WAIT_EXECUTION_PHASE_ONE_INPUTS: frozenset({Stage.EXECUTION_PHASE_ONE}),
        Stage.EXECUTION_PHASE_ONE: frozenset({Stage.WAIT_EXECUTION_PHASE_TWO_INPUTS}),
        Stage.WAIT_EXECUTION_PHASE_TWO_INPUTS: frozenset({Stage.EXECUTION_PHASE_TWO}),
        Stage.EXECUTION_PHASE_TWO: frozenset({Stage.WAIT_EXECUTION_PHASE_THREE_INPUTS}),
        Stage.WAIT_EXECUTION_PHASE_THREE_INPUTS: frozenset({Stage.EXECUTION_PHASE_THREE}),
    },
    next_by_role={
        (Stage.CONFIRMATION_PHASE, Role.AGGREGATOR): Stage.WAIT_SETUP_PHASE_INPUTS,
        (Stage.CONFIRMATION_PHASE, Role.NON_AGGREGATOR): Stage.WAIT_TO_START,
    },
    entries={
        Stage.WAIT_REQUISITIONS_AND_KEY_SET: StageEntry(_WAIT),
        Stage.CONFIRMATION_PHASE: StageEntry(_QUEUE),
        Stage.WAIT_TO_START: StageEntry(_WAIT, roles=frozenset({Role.NON_AGGREGATOR})),
        Stage.WAIT_SETUP_PHASE_INPUTS: StageEntry(
            _WAIT,
            one_output_per_other_participant=True,
            outputs_keyed_by_sender=True,
            roles=frozenset({Role.AGGREGATOR}),
        ),
        Stage.SETUP_PHASE: StageEntry(_QUEUE, output_slots=1),
        Stage.WAIT_EXECUTION_PHASE_ONE_INPUTS: StageEntry(_WAIT, output_slots=1),
        Stage.EXECUTION_PHASE_ONE: StageEntry(_QUEUE, output_slots=1),
        Stage.WAIT_EXECUTION_PHASE_TWO_INPUTS: StageEntry(_WAIT, output_slots=1),
        Stage.EXECUTION_PHASE_TWO: StageEntry(_QUEUE, output_slots=1),
        Stage.WAIT_EXECUTION_PHASE_THREE_INPUTS: StageEntry(_WAIT, output_slots=1),
        Stage.EXECUTION_PHASE_THREE: StageEntry(_QUEUE, output_slots=1),
    },
)
