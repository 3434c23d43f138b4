"""The protocol stage machines: numbers, reachability, transitions and per-role successors."""

from __future__ import annotations

from collections import deque

import pytest

from cmms.protocols import stages
from cmms.protocols.hmss.stages import Role as HmssRole
from cmms.protocols.hmss.stages import Stage as Hmss
from cmms.protocols.llv2.stages import Role as Llv2Role
from cmms.protocols.llv2.stages import Stage as Llv2
from cmms.protocols.reach_only_llv2.stages import Role as RoRole
from cmms.protocols.reach_only_llv2.stages import Stage as RoLlv2
from cmms.protocols.stages import (
    AfterTransition,
    IllegalTransitionError,
    ProtocolType,
    StageGraph,
    UnknownProtocolError,
    UnknownStageError,
    stage_graph,
    stage_graphs,
)
from cmms.protocols.trustee.stages import Role as TrusTeeRole
from cmms.protocols.trustee.stages import Stage as TrusTee

GRAPHS = list(stage_graphs().values())
IDS = [g.protocol.name for g in GRAPHS]


def reachable(graph: StageGraph) -> set[int]:
    seen: set[int] = set(graph.initial_stages)
    todo = deque(graph.initial_stages)
    while todo:
        for following in graph.successors_of(todo.popleft()):
            if following not in seen:
                seen.add(following)
                todo.append(following)
    return seen


def test_registry_is_keyed_by_protocol_number() -> None:
    assert sorted(stage_graphs()) == [1, 2, 3, 4]
    assert stage_graph(1).stage_enum is Llv2
    assert stage_graph(2).stage_enum is RoLlv2
    assert stage_graph(3).stage_enum is Hmss
    assert stage_graph(4).stage_enum is TrusTee
    with pytest.raises(UnknownProtocolError):
        stage_graph(0)
    with pytest.raises(UnknownProtocolError):
        stage_graph(5)


def test_stage_numbers_match_the_spec() -> None:
    assert [s.value for s in Llv2] == list(range(14))
    assert Llv2.WAIT_SETUP_PHASE_INPUTS == 5 and Llv2.EXECUTION_PHASE_THREE == 12
    assert Llv2.COMPLETE == 13
    assert RoLlv2.WAIT_EXECUTION_PHASE_INPUTS == 7 and RoLlv2.COMPLETE == 9
    assert [s.name for s in Hmss] == [
        "STAGE_UNSPECIFIED",
        "INITIALIZED",
        "WAIT_TO_START",
        "WAIT_ON_SHUFFLE_INPUT_PHASE_ONE",
        "SETUP_PHASE",
        "WAIT_ON_SHUFFLE_INPUT_PHASE_TWO",
        "WAIT_ON_AGGREGATION_INPUT",
        "SHUFFLE_PHASE",
        "AGGREGATION_PHASE",
        "COMPLETE",
    ]
    assert [s.value for s in Hmss] == list(range(10))
    assert (TrusTee.INITIALIZED, TrusTee.WAIT_TO_START, TrusTee.COMPUTING, TrusTee.COMPLETE) == (
        1,
        2,
        3,
        4,
    )
    assert int(ProtocolType.TRUS_TEE) == 4


@pytest.mark.parametrize("graph", GRAPHS, ids=IDS)
def test_every_non_terminal_stage_is_reachable_from_the_initial_one(graph: StageGraph) -> None:
    # Terminal stages are also reached through Finish, from any stage; the others only by Advance.
    non_terminal = {s.value for s in graph.stages} - graph.terminal_stages
    assert non_terminal <= reachable(graph)


@pytest.mark.parametrize("graph", GRAPHS, ids=IDS)
def test_terminal_stages_have_no_successors(graph: StageGraph) -> None:
    for terminal in graph.terminal_stages:
        assert graph.successors_of(terminal) == frozenset()
        with pytest.raises(IllegalTransitionError):
            graph.next_stage(terminal, graph.role_enum(1))


@pytest.mark.parametrize("graph", GRAPHS, ids=IDS)
def test_every_advance_target_has_an_entry_rule(graph: StageGraph) -> None:
    for stage in graph.stages:
        for following in graph.successors_of(stage):
            if graph.is_terminal(following):
                continue
            assert graph.entry(following).after_transition != AfterTransition.UNSPECIFIED


@pytest.mark.parametrize("graph", GRAPHS, ids=IDS)
def test_wait_stages_leave_the_queue_and_work_stages_join_it(graph: StageGraph) -> None:
    for stage, entry in graph.entries.items():
        expected = (
            AfterTransition.DO_NOT_ADD_TO_QUEUE
            if graph.is_wait(stage)
            else AfterTransition.ADD_UNCLAIMED_TO_QUEUE
        )
        assert entry.after_transition == expected, graph.stage(stage).name


def test_illegal_transition_raises_a_specific_error() -> None:
    graph = stage_graph(ProtocolType.LIQUID_LEGIONS_V2)
    graph.check_transition(Llv2.SETUP_PHASE, Llv2.WAIT_EXECUTION_PHASE_ONE_INPUTS)
    with pytest.raises(IllegalTransitionError, match="SETUP_PHASE to EXECUTION_PHASE_ONE"):
        graph.check_transition(Llv2.SETUP_PHASE, Llv2.EXECUTION_PHASE_ONE)
    with pytest.raises(IllegalTransitionError):
        graph.check_transition(Llv2.EXECUTION_PHASE_THREE, Llv2.COMPLETE)
    with pytest.raises(UnknownStageError):
        graph.check_transition(Llv2.SETUP_PHASE, 99)
    with pytest.raises(UnknownStageError):
        graph.stage(0)


def test_errors_are_value_errors_so_callers_can_treat_them_as_bad_input() -> None:
    assert issubclass(IllegalTransitionError, ValueError)
    assert issubclass(stages.UnknownStageError, stages.StageGraphError)


@pytest.mark.parametrize(
    ("protocol", "role", "path"),
    [
        (
            ProtocolType.LIQUID_LEGIONS_V2,
            Llv2Role.AGGREGATOR,
            [
                Llv2.INITIALIZATION_PHASE,
                Llv2.WAIT_REQUISITIONS_AND_KEY_SET,
                Llv2.CONFIRMATION_PHASE,
                Llv2.WAIT_SETUP_PHASE_INPUTS,
                Llv2.SETUP_PHASE,
                Llv2.WAIT_EXECUTION_PHASE_ONE_INPUTS,
                Llv2.EXECUTION_PHASE_ONE,
                Llv2.WAIT_EXECUTION_PHASE_TWO_INPUTS,
                Llv2.EXECUTION_PHASE_TWO,
                Llv2.WAIT_EXECUTION_PHASE_THREE_INPUTS,
                Llv2.EXECUTION_PHASE_THREE,
            ],
        ),
        (
            ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2,
            RoRole.NON_AGGREGATOR,
            [
                RoLlv2.INITIALIZATION_PHASE,
                RoLlv2.WAIT_REQUISITIONS_AND_KEY_SET,
                RoLlv2.CONFIRMATION_PHASE,
                RoLlv2.WAIT_TO_START,
                RoLlv2.SETUP_PHASE,
                RoLlv2.WAIT_EXECUTION_PHASE_INPUTS,
                RoLlv2.EXECUTION_PHASE,
            ],
        ),
        (
            ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE,
            HmssRole.FIRST_NON_AGGREGATOR,
            [
                Hmss.INITIALIZED,
                Hmss.WAIT_TO_START,
                Hmss.SETUP_PHASE,
                Hmss.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO,
                Hmss.SHUFFLE_PHASE,
                Hmss.COMPLETE,
            ],
        ),
        (
            ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE,
            HmssRole.SECOND_NON_AGGREGATOR,
            [
                Hmss.INITIALIZED,
                Hmss.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE,
                Hmss.SETUP_PHASE,
                Hmss.SHUFFLE_PHASE,
                Hmss.COMPLETE,
            ],
        ),
        (
            ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE,
            HmssRole.AGGREGATOR,
            [
                Hmss.INITIALIZED,
                Hmss.WAIT_ON_AGGREGATION_INPUT,
                Hmss.AGGREGATION_PHASE,
                Hmss.COMPLETE,
            ],
        ),
        (
            ProtocolType.TRUS_TEE,
            TrusTeeRole.AGGREGATOR,
            [TrusTee.INITIALIZED, TrusTee.WAIT_TO_START, TrusTee.COMPUTING, TrusTee.COMPLETE],
        ),
    ],
    ids=["llv2-aggregator", "ro-llv2-worker", "hmss-first", "hmss-second", "hmss-agg", "trustee"],
)
def test_next_stage_follows_each_roles_path(
    protocol: ProtocolType, role: int, path: list[int]
) -> None:
    graph = stage_graph(protocol)
    walked = [path[0]]
    while len(walked) < len(path):
        following = graph.next_stage(walked[-1], role)
        graph.check_transition(walked[-1], following)
        if not graph.is_terminal(following):
            assert graph.entry(following).allows_role(role)
        walked.append(following)
    assert walked == path
    if not graph.is_terminal(path[-1]):
        # LLv2's last execution stage has no successor: the computation ends through Finish.
        with pytest.raises(IllegalTransitionError):
            graph.next_stage(path[-1], role)


def test_llv2_confirmation_branches_by_role() -> None:
    graph = stage_graph(ProtocolType.LIQUID_LEGIONS_V2)
    assert graph.next_stage(Llv2.CONFIRMATION_PHASE, Llv2Role.NON_AGGREGATOR) == Llv2.WAIT_TO_START
    assert graph.next_stage(Llv2.CONFIRMATION_PHASE, Llv2Role.AGGREGATOR) == (
        Llv2.WAIT_SETUP_PHASE_INPUTS
    )
    assert not graph.entry(Llv2.WAIT_TO_START).allows_role(Llv2Role.AGGREGATOR)


def test_output_slot_counts_follow_the_entry_table() -> None:
    llv2 = stage_graph(ProtocolType.LIQUID_LEGIONS_V2)
    assert llv2.entry(Llv2.WAIT_SETUP_PHASE_INPUTS).output_slot_count(participant_count=3) == 2
    assert llv2.entry(Llv2.WAIT_SETUP_PHASE_INPUTS).output_slot_count(participant_count=5) == 4
    with pytest.raises(ValueError):
        llv2.entry(Llv2.WAIT_SETUP_PHASE_INPUTS).output_slot_count()
    assert llv2.entry(Llv2.WAIT_EXECUTION_PHASE_TWO_INPUTS).output_slot_count() == 1
    assert llv2.entry(Llv2.CONFIRMATION_PHASE).output_slot_count() == 0
    hmss = stage_graph(ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE)
    assert hmss.entry(Hmss.WAIT_ON_AGGREGATION_INPUT).output_slot_count() == 2
    assert hmss.entry(Hmss.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE).output_slot_count() == 1
    assert hmss.entry(Hmss.SHUFFLE_PHASE).output_slot_count() == 0
    trustee = stage_graph(ProtocolType.TRUS_TEE)
    assert all(e.output_slot_count() == 0 for e in trustee.entries.values())
    with pytest.raises(IllegalTransitionError):
        trustee.entry(TrusTee.COMPLETE)
    with pytest.raises(IllegalTransitionError):
        trustee.entry(TrusTee.INITIALIZED)
