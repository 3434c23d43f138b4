"""In-process reach-only LLv2 runs (no network) and the plaintext ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cmms.crypto import elgamal
from cmms.crypto.elgamal import KeyPair, PublicKey
from cmms.crypto.randomness import RandomSource
from cmms.protocols.liquid_legions.errors import InvalidStageInputError
from cmms.protocols.liquid_legions.parallel import ExecutionOptions
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters
from cmms.protocols.llv2.simulation import duchy_key_pairs, ring
from cmms.protocols.reach_only_llv2.execution_phase import (
    ExecutionPhaseRequest,
    execution_phase_aggregator,
    execution_phase_non_aggregator,
)
from cmms.protocols.reach_only_llv2.setup_phase import SetupPhaseRequest, setup_phase
from cmms.sketch import ReachOnlyLiquidLegionsSketch, estimate_reach_with_sampling
from cmms.sketch.encryption import encrypt_reach_only_sketch


@dataclass(frozen=True)
class Outcome:
    """The reach and the active register count it was estimated from."""

    reach: int
    active_registers: int


def run_reach_only_llv2(
    parameters: LiquidLegionsParameters,
    pairs: Sequence[KeyPair],
    requisitions: Sequence[Sequence[bytes]],
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> Outcome:
    """Run every stage of every duchy in ring order; `requisitions[d]` are duchy d's payloads."""
    if len(pairs) != parameters.duchies or len(requisitions) != parameters.duchies:
        raise InvalidStageInputError("need one key pair and one requisition list per duchy")
    keys = ring(pairs)
    workers, aggregator, last = keys[:-1], keys[-1], len(keys) - 1

    def rng(duchy: int, stage: str) -> RandomSource:
        return random.derive(f"duchy/{duchy}/{stage}")

    setups = tuple(
        setup_phase(
            SetupPhaseRequest(parameters, k, tuple(requisitions[d])), rng(d, "setup"), options
        ).payload
        for d, k in enumerate(workers)
    )
    payload = setup_phase(
        SetupPhaseRequest(parameters, aggregator, tuple(requisitions[last]), setups),
        rng(last, "setup"),
        options,
    ).payload
    for d, k in enumerate(workers):
        payload = execution_phase_non_aggregator(
            ExecutionPhaseRequest(parameters, k, payload), rng(d, "execution"), options
        ).payload
    result = execution_phase_aggregator(
        ExecutionPhaseRequest(parameters, aggregator, payload), options
    )
    return Outcome(result.reach, result.active_registers)


def simulate_reach_only_llv2(
    parameters: LiquidLegionsParameters,
    sketches: Sequence[Sequence[ReachOnlyLiquidLegionsSketch]],
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> Outcome:
    """EDPs encrypt `sketches[d]` (the requisitions held by duchy d), then run the protocol."""
    pairs = duchy_key_pairs(parameters.duchies, random.derive("keys"))
    full = PublicKey(elgamal.combine_public_keys([p.public for p in pairs]))
    requisitions = [
        [
            encrypt_reach_only_sketch(sketch, full, random.derive(f"edp/{d}/{i}"))
            for i, sketch in enumerate(held)
        ]
        for d, held in enumerate(sketches)
    ]
    return run_reach_only_llv2(parameters, pairs, requisitions, random.derive("mpc"), options)


def plaintext_reach_only_llv2(
    parameters: LiquidLegionsParameters, sketches: Sequence[ReachOnlyLiquidLegionsSketch]
) -> Outcome:
    """The noiseless estimate: the number of distinct indexes over all sketches."""
    active = len({int(i) for sketch in sketches for i in sketch.indexes})
    reach = estimate_reach_with_sampling(
        parameters.decay_rate, parameters.max_size, active, parameters.vid_sampling_width
    )
    return Outcome(reach, active)
