"""HMSS stages: numbers, transitions and how each stage is entered.

The enum order is also the global order used to tell whether a peer is ahead of or behind us.
"""

from __future__ import annotations

from enum import IntEnum

from cmms.protocols.stages import AfterTransition, ProtocolType, StageEntry, StageGraph


class Stage(IntEnum):
    STAGE_UNSPECIFIED = 0
    INITIALIZED = 1
    WAIT_TO_START = 2
    WAIT_ON_SHUFFLE_INPUT_PHASE_ONE = 3
    SETUP_PHASE = 4
    WAIT_ON_SHUFFLE_INPUT_PHASE_TWO = 5
    WAIT_ON_AGGREGATION_INPUT = 6
    SHUFFLE_PHASE = 7
    AGGREGATION_PHASE = 8
    COMPLETE = 9


class Role(IntEnum):
    AGGREGATOR = 1
    FIRST_NON_AGGREGATOR = 3
    SECOND_NON_AGGREGATOR = 4


_QUEUE = AfterTransition.ADD_UNCLAIMED_TO_QUEUE
_WAIT = AfterTransition.DO_NOT_ADD_TO_QUEUE
_FIRST = frozenset({Role.FIRST_NON_AGGREGATOR})
_SECOND = frozenset({Role.SECOND_NON_AGGREGATOR})
_WORKERS = frozenset({Role.FIRST_NON_AGGREGATOR, Role.SECOND_NON_AGGREGATOR})
_AGGREGATOR = frozenset({Role.AGGREGATOR})

GRAPH = StageGraph(
    protocol=ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE,
    stage_enum=Stage,
    role_enum=Role,
    initial_stages=(Stage.INITIALIZED,),
    terminal_stages=frozenset({Stage.COMPLETE}),
    wait_stages=frozenset(
        {
            Stage.WAIT_TO_START,
            Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE,
            Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO,
            Stage.WAIT_ON_AGGREGATION_INPUT,
        }
    ),
    successors={
        Stage.INITIALIZED: frozenset(
            {
                Stage.WAIT_TO_START,
                Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE,
                Stage.WAIT_ON_AGGREGATION_INPUT,
            }
        ),
        Stage.WAIT_TO_START: frozenset({Stage.SETUP_PHASE}),
        Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE: frozenset({Stage.SETUP_PHASE}),
        Stage.SETUP_PHASE: frozenset({Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO, Stage.SHUFFLE_PHASE}),
        Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO: frozenset({Stage.SHUFFLE_PHASE}),
        Stage.WAIT_ON_AGGREGATION_INPUT: frozenset({Stage.AGGREGATION_PHASE}),
        Stage.SHUFFLE_PHASE: frozenset({Stage.COMPLETE}),
        Stage.AGGREGATION_PHASE: frozenset({Stage.COMPLETE}),
    },
    next_by_role={
        (Stage.INITIALIZED, Role.FIRST_NON_AGGREGATOR): Stage.WAIT_TO_START,
        (Stage.INITIALIZED, Role.SECOND_NON_AGGREGATOR): Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE,
        (Stage.INITIALIZED, Role.AGGREGATOR): Stage.WAIT_ON_AGGREGATION_INPUT,
        (Stage.SETUP_PHASE, Role.FIRST_NON_AGGREGATOR): Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO,
        (Stage.SETUP_PHASE, Role.SECOND_NON_AGGREGATOR): Stage.SHUFFLE_PHASE,
    },
    entries={
        Stage.WAIT_TO_START: StageEntry(_WAIT, roles=_FIRST),
        Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE: StageEntry(_WAIT, output_slots=1, roles=_SECOND),
        Stage.SETUP_PHASE: StageEntry(_QUEUE, roles=_WORKERS),
        Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO: StageEntry(_WAIT, output_slots=1, roles=_FIRST),
        Stage.WAIT_ON_AGGREGATION_INPUT: StageEntry(
            _WAIT, output_slots=2, outputs_keyed_by_sender=True, roles=_AGGREGATOR
        ),
        Stage.SHUFFLE_PHASE: StageEntry(_QUEUE, roles=_WORKERS),
        Stage.AGGREGATION_PHASE: StageEntry(_QUEUE, roles=_AGGREGATOR),
    },
)
