"""TrusTee stages: a straight line run by the aggregator alone, with no blobs."""

from __future__ import annotations

from enum import IntEnum

from cmms.protocols.stages import AfterTransition, ProtocolType, StageEntry, StageGraph


class Stage(IntEnum):
    STAGE_UNSPECIFIED = 0
    INITIALIZED = 1
    WAIT_TO_START = 2
    COMPUTING = 3
    COMPLETE = 4


class Role(IntEnum):
    AGGREGATOR = 1


GRAPH = StageGraph(
    protocol=ProtocolType.TRUS_TEE,
    stage_enum=Stage,
    role_enum=Role,
    initial_stages=(Stage.INITIALIZED,),
    terminal_stages=frozenset({Stage.COMPLETE}),
    wait_stages=frozenset({Stage.WAIT_TO_START}),
    successors={
        Stage.INITIALIZED: frozenset({Stage.WAIT_TO_START}),
        Stage.WAIT_TO_START: frozenset({Stage.COMPUTING}),
        Stage.COMPUTING: frozenset({Stage.COMPLETE}),
    },
    entries={
        Stage.WAIT_TO_START: StageEntry(AfterTransition.DO_NOT_ADD_TO_QUEUE),
        Stage.COMPUTING: StageEntry(AfterTransition.ADD_UNCLAIMED_TO_QUEUE),
    },
)
