"""Reach-only payload checks: trailing ciphertext, lengths, bad points, excess-noise lookup."""

from __future__ import annotations

import numpy as np
import pytest

from cmms.crypto import elgamal
from cmms.crypto.elgamal import PublicKey
from cmms.crypto.errors import IdentityPointError, InvalidPointError
from cmms.crypto.randomness import SeededRandomSource
from cmms.protocols.liquid_legions.errors import InvalidStageInputError, PayloadSizeError
from cmms.protocols.liquid_legions.keys import DuchyKeys
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters
from cmms.protocols.llv2.actions import Recipient
from cmms.protocols.llv2.simulation import duchy_key_pairs, ring
from cmms.protocols.reach_only_llv2.actions import InputDescription, action_for
from cmms.protocols.reach_only_llv2.execution_phase import (
    ExecutionPhaseRequest,
    execution_phase_aggregator,
    execution_phase_non_aggregator,
)
from cmms.protocols.reach_only_llv2.setup_phase import SetupPhaseRequest, setup_phase
from cmms.protocols.reach_only_llv2.stages import Role, Stage
from cmms.sketch import ReachOnlyLiquidLegionsSketch
from cmms.sketch.encryption import encrypt_reach_only_sketch

RANDOM = SeededRandomSource("ro-validation")
PARAMETERS = LiquidLegionsParameters(decay_rate=12, max_size=1000, duchies=3, requisitions=3)


@pytest.fixture(scope="module")
def setup() -> tuple[list[DuchyKeys], bytes]:
    pairs = duchy_key_pairs(3, RANDOM)
    keys = ring(pairs)
    full = PublicKey(elgamal.combine_public_keys([p.public for p in pairs]))
    sketch = ReachOnlyLiquidLegionsSketch(np.arange(5, dtype=np.int64))
    payload = setup_phase(
        SetupPhaseRequest(PARAMETERS, keys[0], (encrypt_reach_only_sketch(sketch, full, RANDOM),)),
        RANDOM,
    ).payload
    return keys, payload


def test_lengths_and_trailing_ciphertext(setup: tuple[list[DuchyKeys], bytes]) -> None:
    keys, payload = setup
    with pytest.raises(PayloadSizeError):
        setup_phase(SetupPhaseRequest(PARAMETERS, keys[0], (bytes(67),)), RANDOM)
    with pytest.raises(PayloadSizeError, match="trailing"):
        setup_phase(SetupPhaseRequest(PARAMETERS, keys[-1], (), (bytes(10),)), RANDOM)
    with pytest.raises(PayloadSizeError):
        execution_phase_non_aggregator(
            ExecutionPhaseRequest(PARAMETERS, keys[0], payload[:-1]), RANDOM
        )
    with pytest.raises(PayloadSizeError):
        execution_phase_aggregator(ExecutionPhaseRequest(PARAMETERS, keys[-1], payload[1:]))


def test_bad_points(setup: tuple[list[DuchyKeys], bytes]) -> None:
    keys, payload = setup
    tampered = bytearray(payload)
    tampered[66] = 0x05
    with pytest.raises(InvalidPointError, match="prefix"):
        execution_phase_non_aggregator(
            ExecutionPhaseRequest(PARAMETERS, keys[0], bytes(tampered)), RANDOM
        )
    zeroed = payload[:-66] + bytes(66)
    with pytest.raises(IdentityPointError):
        execution_phase_non_aggregator(ExecutionPhaseRequest(PARAMETERS, keys[0], zeroed), RANDOM)
    with pytest.raises(IdentityPointError):
        setup_phase(SetupPhaseRequest(PARAMETERS, keys[-1], (), (zeroed,)), RANDOM)


def test_unknown_excess_noise_is_refused(setup: tuple[list[DuchyKeys], bytes]) -> None:
    keys, payload = setup
    # Replace the trailing ciphertext by an encryption of a point that is no small multiple of P.
    wrong = elgamal.encrypt_one(PublicKey(keys[0].full_key), elgamal.public_element(12345), RANDOM)
    forged = payload[:-66] + wrong
    for k in keys[:-1]:
        forged = execution_phase_non_aggregator(
            ExecutionPhaseRequest(PARAMETERS, k, forged), RANDOM
        ).payload
    with pytest.raises(InvalidStageInputError, match="excess-noise"):
        execution_phase_aggregator(ExecutionPhaseRequest(PARAMETERS, keys[-1], forged))


def test_actions() -> None:
    setup_action = action_for(Role.AGGREGATOR, Stage.SETUP_PHASE)
    assert setup_action.recipient == Recipient.NEXT_IN_RING
    assert setup_action.description == InputDescription.EXECUTION_PHASE_INPUT
    assert action_for(Role.AGGREGATOR, Stage.EXECUTION_PHASE).recipient == Recipient.KINGDOM
    with pytest.raises(InvalidStageInputError):
        action_for(Role.NON_AGGREGATOR, Stage.WAIT_EXECUTION_PHASE_INPUTS)
