"""HMSS role actions, SETUP_PHASE payloads and shuffle-request assembly."""

from __future__ import annotations

import numpy as np
import pytest

from cmms.protocols.errors import InvalidProtocolInputError
from cmms.protocols.hmss.actions import (
    ACTIONS,
    InputDescription,
    StageFunction,
    action_for,
    stage_receiving,
)
from cmms.protocols.hmss.parameters import NoiseConfig
from cmms.protocols.hmss.payloads import SecretSeed, decode_shuffle_phase_input
from cmms.protocols.hmss.setup_phase import (
    SetupPhaseRequest,
    assemble_shuffle_phase_request,
    run_setup_phase,
)
from cmms.protocols.hmss.shuffle_phase import WorkerOrder
from cmms.protocols.hmss.stages import GRAPH, Role, Stage

W1, W2, A = Role.FIRST_NON_AGGREGATOR, Role.SECOND_NON_AGGREGATOR, Role.AGGREGATOR


def test_actions_follow_the_stage_graph() -> None:
    for action in ACTIONS:
        assert action.next_stage is not None
        assert GRAPH.next_stage(action.stage, action.role) == action.next_stage


def test_who_sends_what_to_whom() -> None:
    w1_setup, w2_setup = action_for(W1, Stage.SETUP_PHASE), action_for(W2, Stage.SETUP_PHASE)
    assert (w1_setup.recipient, w1_setup.description) == (
        W2,
        InputDescription.SHUFFLE_PHASE_INPUT_ONE,
    )
    assert (w2_setup.recipient, w2_setup.description) == (
        W1,
        InputDescription.SHUFFLE_PHASE_INPUT_TWO,
    )
    for worker in (W1, W2):
        shuffle = action_for(worker, Stage.SHUFFLE_PHASE)
        assert shuffle.function is StageFunction.SHUFFLE
        assert (shuffle.recipient, shuffle.description) == (
            A,
            InputDescription.AGGREGATION_PHASE_INPUT,
        )
    assert action_for(A, Stage.AGGREGATION_PHASE).function is StageFunction.AGGREGATE
    assert stage_receiving(InputDescription.SHUFFLE_PHASE_INPUT_ONE) == (
        W2,
        Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE,
    )
    assert stage_receiving(InputDescription.SHUFFLE_PHASE_INPUT_TWO) == (
        W1,
        Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO,
    )
    assert stage_receiving(InputDescription.AGGREGATION_PHASE_INPUT) == (
        A,
        Stage.WAIT_ON_AGGREGATION_INPUT,
    )
    with pytest.raises(InvalidProtocolInputError, match="AGGREGATOR"):
        action_for(A, Stage.SHUFFLE_PHASE)


def test_setup_phase_payload() -> None:
    held = (SecretSeed("r2", b"sealed", 4, "cert"),)
    response = run_setup_phase(SetupPhaseRequest(W1, b"o" * 48, held))
    assert response.recipient is W2
    assert response.expected_peer_stage is Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE
    assert response.next_stage is Stage.WAIT_ON_SHUFFLE_INPUT_PHASE_TWO
    content = decode_shuffle_phase_input(response.payload)
    assert content.peer_random_seed == b"o" * 48
    assert content.secret_seeds == held


def _peer(register_count: int = 4) -> bytes:
    return run_setup_phase(
        SetupPhaseRequest(W2, b"p" * 48, (SecretSeed("r1", b"sealed", register_count, "c"),))
    ).payload


def test_assembly_counts_requisitions_and_xors_seeds() -> None:
    request = assemble_shuffle_phase_request(
        W1,
        b"o" * 48,
        decode_shuffle_phase_input(_peer()),
        {"r2": np.array([1, 0, 2, 1], dtype=np.uint8), "r0": np.zeros(4, dtype=np.uint8)},
        lambda seed: b"k" * 48,
        maximum_frequency=3,
        ring_modulus=127,
        noise=NoiseConfig(),
    )
    assert request.order is WorkerOrder.FIRST
    assert request.params.maximum_combined_frequency == 9  # MF 3 x 3 requisitions (pitfall 1)
    assert request.common_random_seed == bytes(
        a ^ b for a, b in zip(b"o" * 48, b"p" * 48, strict=True)
    )
    assert [s.tolist() for s in request.data_shares] == [[0, 0, 0, 0], [1, 0, 2, 1]]
    assert request.seed_shares == (b"k" * 48,)


def test_assembly_rejects_register_count_mismatch_and_bad_seeds() -> None:
    shares = {"r2": np.zeros(4, dtype=np.uint8)}
    with pytest.raises(InvalidProtocolInputError, match="different register counts"):
        assemble_shuffle_phase_request(
            W1,
            b"o" * 48,
            decode_shuffle_phase_input(_peer(5)),
            shares,
            lambda s: b"k" * 48,
            2,
            127,
            NoiseConfig(),
        )
    with pytest.raises(InvalidProtocolInputError, match="48 bytes"):
        assemble_shuffle_phase_request(
            W1,
            b"o" * 48,
            decode_shuffle_phase_input(_peer()),
            shares,
            lambda s: b"k",
            2,
            127,
            NoiseConfig(),
        )


def test_stage_functions_by_measurement_type() -> None:
    from cmms.protocols.hmss.actions import aggregation_function, shuffle_function
    from cmms.protocols.hmss.aggregation_phase import complete_reach_only_aggregation_phase
    from cmms.protocols.hmss.parameters import MeasurementType
    from cmms.protocols.hmss.shuffle_phase import complete_reach_and_frequency_shuffle_phase

    assert (
        shuffle_function(MeasurementType.REACH_AND_FREQUENCY)
        is complete_reach_and_frequency_shuffle_phase
    )
    assert aggregation_function(MeasurementType.REACH) is complete_reach_only_aggregation_phase
