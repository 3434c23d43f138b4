"""Stage machines of the MPC protocols, as data.

Each protocol package (`llv2`, `reach_only_llv2`, `hmss`, `trustee`) describes its stages with one
`StageGraph`: which stages exist, where a computation starts and ends, which transitions are legal,
where each role goes next, and how a stage is entered (queue handling after the transition and the
number of OUTPUT blob slots to create). Stage numbers are the ones stored in duchy databases and sent
on the wire, so they never change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum


class ProtocolType(IntEnum):
    """`ComputationType` numbers; the key of every per-protocol table."""

    UNSPECIFIED = 0
    LIQUID_LEGIONS_V2 = 1
    REACH_ONLY_LIQUID_LEGIONS_V2 = 2
    HONEST_MAJORITY_SHARE_SHUFFLE = 3
    TRUS_TEE = 4


class RoleInComputation(IntEnum):
    """Every role number any protocol uses; each protocol's `Role` enum is a subset of these."""

    UNSPECIFIED = 0
    AGGREGATOR = 1
    NON_AGGREGATOR = 2
    FIRST_NON_AGGREGATOR = 3
    SECOND_NON_AGGREGATOR = 4


class AfterTransition(IntEnum):
    """What happens to the work lock when a computation enters a stage."""

    UNSPECIFIED = 0
    RETAIN_AND_EXTEND_LOCK = 1
    ADD_UNCLAIMED_TO_QUEUE = 2
    DO_NOT_ADD_TO_QUEUE = 3


class StageGraphError(ValueError):
    """Base class of the errors raised while consulting a stage graph."""


class UnknownProtocolError(StageGraphError):
    """No stage graph is registered for the protocol number."""


class UnknownStageError(StageGraphError):
    """The stage number is not a stage of the protocol."""


class IllegalTransitionError(StageGraphError):
    """The protocol does not allow moving from one stage to the other (or to anywhere)."""


@dataclass(frozen=True)
class StageEntry:
    """How a computation enters a non-initial, non-terminal stage.

    `output_slots` is a fixed count of OUTPUT blob slots; when `one_output_per_other_participant` is
    set the count is instead the number of participants minus one (one slot per sending peer).
    `outputs_keyed_by_sender` marks stages whose stage details map each sender to its slot.
    `roles` lists the roles allowed to enter the stage; `None` means any role.
    """

    after_transition: AfterTransition
    output_slots: int = 0
    one_output_per_other_participant: bool = False
    outputs_keyed_by_sender: bool = False
    roles: frozenset[int] | None = None

    def output_slot_count(self, participant_count: int | None = None) -> int:
        if not self.one_output_per_other_participant:
            return self.output_slots
        if participant_count is None or participant_count < 1:
            raise ValueError("this stage needs the participant count to size its outputs")
        return participant_count - 1

    def allows_role(self, role: int) -> bool:
        return self.roles is None or role in self.roles


@dataclass(frozen=True)
class StageGraph:
    """One protocol's stage machine.

    `successors` lists every legal Advance target. `next_by_role` resolves the next stage where the
    successor depends on the duchy's role; elsewhere the single successor is the next stage.
    """

    protocol: ProtocolType
    stage_enum: type[IntEnum]
    role_enum: type[IntEnum]
    initial_stages: tuple[int, ...]
    terminal_stages: frozenset[int]
    wait_stages: frozenset[int]
    successors: Mapping[int, frozenset[int]]
    entries: Mapping[int, StageEntry]
    next_by_role: Mapping[tuple[int, int], int] = field(default_factory=dict)

    @property
    def stages(self) -> tuple[IntEnum, ...]:
        """Every real stage (the UNSPECIFIED zero excluded), in number order."""
        return tuple(s for s in self.stage_enum if s.value != 0)

    @property
    def initial_stage(self) -> IntEnum:
        """The stage a new computation starts in when the creator does not name one."""
        return self.stage(self.initial_stages[0])

    def stage(self, number: int) -> IntEnum:
        """The enum member for `number`; raises `UnknownStageError` for anything else."""
        if number == 0:
            raise UnknownStageError(f"stage 0 (unspecified) is not a {self.protocol.name} stage")
        try:
            return self.stage_enum(number)
        except ValueError:
            raise UnknownStageError(f"{number} is not a {self.protocol.name} stage") from None

    def is_initial(self, stage: int) -> bool:
        return stage in self.initial_stages

    def is_terminal(self, stage: int) -> bool:
        return stage in self.terminal_stages

    def is_wait(self, stage: int) -> bool:
        return stage in self.wait_stages

    def successors_of(self, stage: int) -> frozenset[int]:
        self.stage(stage)
        return self.successors.get(stage, frozenset())

    def check_transition(self, current: int, following: int) -> None:
        """Raise `IllegalTransitionError` unless `current -> following` is a legal Advance."""
        current_stage = self.stage(current)
        following_stage = self.stage(following)
        if following not in self.successors_of(current):
            raise IllegalTransitionError(
                f"{self.protocol.name}: cannot go from {current_stage.name} to {following_stage.name}"
            )

    def next_stage(self, stage: int, role: int) -> IntEnum:
        """Where a duchy with `role` goes after `stage`; raises `IllegalTransitionError` if nowhere."""
        current = self.stage(stage)
        by_role = self.next_by_role.get((stage, role))
        if by_role is not None:
            return self.stage(by_role)
        candidates = [s for s in self.successors_of(stage) if self._may_enter(s, role)]
        if len(candidates) == 1:
            return self.stage(candidates[0])
        raise IllegalTransitionError(
            f"{self.protocol.name}: no next stage after {current.name} for role {role}"
        )

    def _may_enter(self, stage: int, role: int) -> bool:
        entry = self.entries.get(stage)
        return entry is None or entry.allows_role(role)

    def entry(self, stage: int) -> StageEntry:
        """How `stage` is entered by Advance; terminal stages are entered only by Finish."""
        found = self.entries.get(stage)
        if found is None:
            name = self.stage(stage).name
            raise IllegalTransitionError(f"{self.protocol.name}: {name} is not entered by Advance")
        return found


def _registry() -> dict[int, StageGraph]:
    # Imported here so that each protocol package can depend on this module's types.
    from cmms.protocols.hmss.stages import GRAPH as HMSS
    from cmms.protocols.llv2.stages import GRAPH as LLV2
    from cmms.protocols.reach_only_llv2.stages import GRAPH as RO_LLV2
    from cmms.protocols.trustee.stages import GRAPH as TRUS_TEE

    return {graph.protocol.value: graph for graph in (LLV2, RO_LLV2, HMSS, TRUS_TEE)}


_GRAPHS: dict[int, StageGraph] = {}


def stage_graphs() -> Mapping[int, StageGraph]:
    """Every registered stage graph, keyed by protocol number."""
    if not _GRAPHS:
        _GRAPHS.update(_registry())
    return _GRAPHS


def stage_graph(protocol: int) -> StageGraph:
    """The stage graph of `protocol`; raises `UnknownProtocolError` for an unregistered number."""
    found = stage_graphs().get(protocol)
    if found is None:
        raise UnknownProtocolError(f"no stage graph for protocol {protocol}")
    return found
