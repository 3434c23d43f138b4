"""Where a receiver stands relative to the WAIT stage an input is for."""

from __future__ import annotations

import pytest

from cmms.duchy.control.stage_position import Position, position
from cmms.protocols.hmss.stages import GRAPH as HMSS
from cmms.protocols.hmss.stages import Role as HmssRole
from cmms.protocols.hmss.stages import Stage as H
from cmms.protocols.llv2.stages import GRAPH as LLV2
from cmms.protocols.llv2.stages import Role as Llv2Role
from cmms.protocols.llv2.stages import Stage as L


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (L.WAIT_SETUP_PHASE_INPUTS, Position.AT),
        (L.SETUP_PHASE, Position.PAST),
        (L.WAIT_EXECUTION_PHASE_TWO_INPUTS, Position.PAST),
        (L.COMPLETE, Position.PAST),
        (L.CONFIRMATION_PHASE, Position.NOT_THERE),
        (L.INITIALIZATION_PHASE, Position.NOT_THERE),
    ],
)
def test_llv2_aggregator_and_setup_inputs(current: int, expected: Position) -> None:
    found = position(LLV2, Llv2Role.AGGREGATOR, L.WAIT_SETUP_PHASE_INPUTS, current)
    assert found is expected


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (H.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE, Position.AT),
        (H.SETUP_PHASE, Position.PAST),
        (H.SHUFFLE_PHASE, Position.PAST),
        (H.INITIALIZED, Position.NOT_THERE),
    ],
)
def test_hmss_second_non_aggregator_and_shuffle_input_one(current: int, expected: Position) -> None:
    found = position(
        HMSS, HmssRole.SECOND_NON_AGGREGATOR, H.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE, current
    )
    assert found is expected


def test_hmss_aggregator_in_initialized_is_not_there_rather_than_an_error() -> None:
    found = position(HMSS, HmssRole.AGGREGATOR, H.WAIT_ON_AGGREGATION_INPUT, H.INITIALIZED)
    assert found is Position.NOT_THERE
    assert (
        position(HMSS, HmssRole.AGGREGATOR, H.WAIT_ON_AGGREGATION_INPUT, H.AGGREGATION_PHASE)
        is Position.PAST
    )
