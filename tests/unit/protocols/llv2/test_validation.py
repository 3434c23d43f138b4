"""Malformed and tampered payloads give clear errors wherever the damage is detectable.

Detectable: a length that does not fit the record size, a point whose prefix is not 02/03, an
x coordinate of no curve point, all-zero bytes (the identity), an SKA matrix not divisible into
rows of F-1. Not detectable: a flipped byte that still yields a valid point (about half of all
x-coordinate flips) silently changes that ciphertext, since ElGamal has no integrity; key and
count ciphertexts of groups dropped at the aggregator, and SKA entries after a row's first zero,
are never decoded.
"""

from __future__ import annotations

import pytest

from cmms.crypto import elgamal
from cmms.crypto.elgamal import KeyPair, PublicKey
from cmms.crypto.errors import IdentityPointError, InvalidPointError
from cmms.crypto.randomness import SeededRandomSource
from cmms.protocols.liquid_legions.errors import InvalidStageInputError, PayloadSizeError
from cmms.protocols.liquid_legions.keys import DuchyKeys
from cmms.protocols.llv2.actions import (
    InputDescription,
    Recipient,
    StageFunction,
    action_for,
    finishes_after_phase_two,
)
from cmms.protocols.llv2.execution_phase_one import (
    ExecutionPhaseOneRequest,
    execution_phase_one_aggregator,
    execution_phase_one_non_aggregator,
)
from cmms.protocols.llv2.execution_phase_three import (
    ExecutionPhaseThreeRequest,
    execution_phase_three_aggregator,
    execution_phase_three_non_aggregator,
)
from cmms.protocols.llv2.execution_phase_two import (
    ExecutionPhaseTwoRequest,
    execution_phase_two_aggregator,
    execution_phase_two_non_aggregator,
)
from cmms.protocols.llv2.setup_phase import SetupPhaseRequest, setup_phase
from cmms.protocols.llv2.simulation import duchy_key_pairs, ring
from cmms.protocols.llv2.stages import Role, Stage
from cmms.sketch.encryption import encrypt_sketch

from .helpers import parameters, sketch

PARAMETERS = parameters()
RANDOM = SeededRandomSource("validation")


@pytest.fixture(scope="module")
def ring_keys() -> tuple[list[KeyPair], list[DuchyKeys]]:
    pairs = duchy_key_pairs(3, RANDOM)
    return pairs, ring(pairs)


@pytest.fixture(scope="module")
def registers(ring_keys: tuple[list[KeyPair], list[DuchyKeys]]) -> bytes:
    pairs, _ = ring_keys
    full = PublicKey(elgamal.combine_public_keys([p.public for p in pairs]))
    return encrypt_sketch(sketch([(1, 1, 2), (2, 2, 3), (3, 3, 1)]), full, 10, RANDOM)


def _tamper(payload: bytes, position: int, value: int) -> bytes:
    changed = bytearray(payload)
    changed[position] = value
    return bytes(changed)


def _zero_point(payload: bytes, position: int) -> bytes:
    changed = bytearray(payload)
    changed[position : position + 33] = bytes(33)
    return bytes(changed)


def test_lengths_are_checked_everywhere(
    ring_keys: tuple[list[KeyPair], list[DuchyKeys]], registers: bytes
) -> None:
    _, keys = ring_keys
    w, a = keys[0], keys[-1]
    with pytest.raises(PayloadSizeError, match="requisition 0"):
        setup_phase(SetupPhaseRequest(PARAMETERS, w, (registers[:-1],)), RANDOM)
    with pytest.raises(PayloadSizeError, match="received setup output 0"):
        setup_phase(SetupPhaseRequest(PARAMETERS, a, (), (registers + b"x",)), RANDOM)
    with pytest.raises(PayloadSizeError):
        execution_phase_one_non_aggregator(
            ExecutionPhaseOneRequest(PARAMETERS, w, registers[:100]), RANDOM
        )
    with pytest.raises(PayloadSizeError):
        execution_phase_one_aggregator(
            ExecutionPhaseOneRequest(PARAMETERS, a, registers[:100]), RANDOM
        )
    with pytest.raises(PayloadSizeError):
        execution_phase_two_non_aggregator(
            ExecutionPhaseTwoRequest(PARAMETERS, w, bytes(263)), RANDOM
        )
    with pytest.raises(PayloadSizeError):
        execution_phase_two_aggregator(ExecutionPhaseTwoRequest(PARAMETERS, a, bytes(265)), RANDOM)
    # F = 10: rows of 9 entries; 5 entries cannot be a whole number of rows.
    with pytest.raises(PayloadSizeError, match="SKA"):
        execution_phase_three_non_aggregator(ExecutionPhaseThreeRequest(PARAMETERS, w, bytes(330)))
    with pytest.raises(PayloadSizeError, match="SKA"):
        execution_phase_three_aggregator(ExecutionPhaseThreeRequest(PARAMETERS, a, bytes(330)))
    with pytest.raises(InvalidStageInputError):
        execution_phase_three_aggregator(ExecutionPhaseThreeRequest(parameters(1), a, bytes(0)))


@pytest.mark.parametrize("field_offset", [0, 33, 66, 99, 132, 165])
def test_bad_points_in_phase_one(
    ring_keys: tuple[list[KeyPair], list[DuchyKeys]], registers: bytes, field_offset: int
) -> None:
    _, keys = ring_keys
    position = 198 + field_offset  # second register
    with pytest.raises(InvalidPointError, match="prefix"):
        execution_phase_one_non_aggregator(
            ExecutionPhaseOneRequest(PARAMETERS, keys[0], _tamper(registers, position, 0x04)),
            RANDOM,
        )
    with pytest.raises(IdentityPointError):
        execution_phase_one_non_aggregator(
            ExecutionPhaseOneRequest(PARAMETERS, keys[0], _zero_point(registers, position)),
            RANDOM,
        )


def test_bad_points_at_the_aggregator(
    ring_keys: tuple[list[KeyPair], list[DuchyKeys]], registers: bytes
) -> None:
    _, keys = ring_keys
    a = keys[-1]
    for offset in (0, 33, 66, 165):  # index u and e, key u, count e
        with pytest.raises(InvalidPointError):
            execution_phase_one_aggregator(
                ExecutionPhaseOneRequest(PARAMETERS, a, _tamper(registers, offset, 0x07)), RANDOM
            )
    tuples = execution_phase_one_aggregator(
        ExecutionPhaseOneRequest(PARAMETERS, a, registers), RANDOM
    ).payload
    for offset in (0, 99, 165, 231):  # every flag and the count
        with pytest.raises(InvalidPointError):
            execution_phase_two_aggregator(
                ExecutionPhaseTwoRequest(PARAMETERS, a, _tamper(tuples, offset, 0x09)), RANDOM
            )
        with pytest.raises(InvalidPointError):
            execution_phase_two_non_aggregator(
                ExecutionPhaseTwoRequest(PARAMETERS, keys[0], _tamper(tuples, offset, 0x09)),
                RANDOM,
            )
    with pytest.raises(IdentityPointError):
        execution_phase_three_non_aggregator(
            ExecutionPhaseThreeRequest(PARAMETERS, keys[0], bytes(594))
        )


def test_actions_follow_the_ring() -> None:
    setup = action_for(Role.NON_AGGREGATOR, Stage.SETUP_PHASE)
    assert setup.recipient == Recipient.AGGREGATOR
    assert setup.description == InputDescription.SETUP_PHASE_INPUT
    assert setup.expected_peer_stage == Stage.WAIT_SETUP_PHASE_INPUTS
    two = action_for(Role.AGGREGATOR, Stage.EXECUTION_PHASE_TWO)
    assert two.function == StageFunction.PHASE_TWO_AGGREGATOR
    assert two.description == InputDescription.EXECUTION_PHASE_THREE_INPUT
    final = action_for(Role.AGGREGATOR, Stage.EXECUTION_PHASE_THREE)
    assert final.recipient == Recipient.KINGDOM and final.next_stage is None
    assert action_for(Role.NON_AGGREGATOR, Stage.EXECUTION_PHASE_THREE).next_stage is None
    with pytest.raises(InvalidStageInputError):
        action_for(Role.AGGREGATOR, Stage.WAIT_TO_START)
    assert finishes_after_phase_two(1) and not finishes_after_phase_two(2)
