"""In-process LLv2 runs (no network) and the plaintext Liquid Legions ground truth.

`run_llv2` passes the stage payloads around the ring `[W_0, ..., W_{D-2}, A]` exactly as the
duchies would; `simulate_llv2` starts one step earlier, from EDP sketches. `plaintext_llv2`
computes what the MPC must output without noise, straight from the same sketches.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from cmms.crypto import elgamal
from cmms.crypto.elgamal import KeyPair, PublicKey
from cmms.crypto.randomness import RandomSource
from cmms.protocols.liquid_legions.errors import EmptyHistogramError, InvalidStageInputError
from cmms.protocols.liquid_legions.keys import DuchyKeys, ring_keys
from cmms.protocols.liquid_legions.parallel import ExecutionOptions
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
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters, ReachAndFrequencyResult
from cmms.protocols.llv2.setup_phase import SetupPhaseRequest, setup_phase
from cmms.sketch import LiquidLegionsSketch, estimate_reach_with_sampling
from cmms.sketch.encryption import encrypt_sketch
from cmms.sketch.liquid_legions import DESTROYED_KEY


@dataclass(frozen=True)
class Outcome:
    """A result with the aggregator's intermediate counts and a digest of every message sent."""

    result: ReachAndFrequencyResult
    active_registers: int
    histogram: tuple[int, ...]
    message_digests: tuple[bytes, ...] = ()


def duchy_key_pairs(duchies: int, random: RandomSource) -> list[KeyPair]:
    """Fresh per-computation key pairs, in ring order (aggregator last)."""
    return [elgamal.generate_key_pair(random.derive(f"duchy/{i}")) for i in range(duchies)]


def ring(pairs: Sequence[KeyPair]) -> list[DuchyKeys]:
    """Each duchy's keys for the ring `pairs` (aggregator last)."""
    elements = [p.public for p in pairs]
    return [ring_keys(elements, i, p.secret) for i, p in enumerate(pairs)]


def run_llv2(
    parameters: ReachAndFrequencyParameters,
    pairs: Sequence[KeyPair],
    requisitions: Sequence[Sequence[bytes]],
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> Outcome:
    """Run every stage of every duchy in ring order; `requisitions[d]` are duchy d's payloads."""
    if len(pairs) != parameters.duchies or len(requisitions) != parameters.duchies:
        raise InvalidStageInputError("need one key pair and one requisition list per duchy")
    keys = ring(pairs)
    workers, aggregator = keys[:-1], keys[-1]
    sent: list[bytes] = []

    def send(payload: bytes) -> bytes:
        sent.append(hashlib.sha256(payload).digest())
        return payload

    def rng(duchy: int, stage: str) -> RandomSource:
        return random.derive(f"duchy/{duchy}/{stage}")

    setups = tuple(
        send(
            setup_phase(
                SetupPhaseRequest(parameters, k, tuple(requisitions[d])), rng(d, "setup"), options
            ).registers
        )
        for d, k in enumerate(workers)
    )
    last = len(keys) - 1
    payload = send(
        setup_phase(
            SetupPhaseRequest(parameters, aggregator, tuple(requisitions[last]), setups),
            rng(last, "setup"),
            options,
        ).registers
    )
    for d, k in enumerate(workers):
        payload = send(
            execution_phase_one_non_aggregator(
                ExecutionPhaseOneRequest(parameters, k, payload), rng(d, "phase1"), options
            ).payload
        )
    payload = send(
        execution_phase_one_aggregator(
            ExecutionPhaseOneRequest(parameters, aggregator, payload), rng(last, "phase1"), options
        ).payload
    )
    for d, k in enumerate(workers):
        payload = send(
            execution_phase_two_non_aggregator(
                ExecutionPhaseTwoRequest(parameters, k, payload), rng(d, "phase2"), options
            ).tuples
        )
    two = execution_phase_two_aggregator(
        ExecutionPhaseTwoRequest(parameters, aggregator, payload), rng(last, "phase2"), options
    )
    if parameters.max_frequency == 1:
        return Outcome(ReachAndFrequencyResult(two.reach), two.active_registers, (), tuple(sent))
    matrix = send(two.ska_matrix)
    for k in workers:
        matrix = send(
            execution_phase_three_non_aggregator(
                ExecutionPhaseThreeRequest(parameters, k, matrix), options
            ).ska_matrix
        )
    three = execution_phase_three_aggregator(
        ExecutionPhaseThreeRequest(parameters, aggregator, matrix), options
    )
    return Outcome(
        ReachAndFrequencyResult(two.reach, three.frequency),
        two.active_registers,
        three.histogram,
        tuple(sent),
    )


def simulate_llv2(
    parameters: ReachAndFrequencyParameters,
    sketches: Sequence[Sequence[LiquidLegionsSketch]],
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> Outcome:
    """EDPs encrypt `sketches[d]` (the requisitions held by duchy d), then `run_llv2`."""
    pairs = duchy_key_pairs(parameters.duchies, random.derive("keys"))
    full = PublicKey(elgamal.combine_public_keys([p.public for p in pairs]))
    requisitions = [
        [
            encrypt_sketch(sketch, full, parameters.max_frequency, random.derive(f"edp/{d}/{i}"))
            for i, sketch in enumerate(held)
        ]
        for d, held in enumerate(sketches)
    ]
    return run_llv2(parameters, pairs, requisitions, random.derive("mpc"), options)


def plaintext_llv2(
    parameters: ReachAndFrequencyParameters, sketches: Sequence[LiquidLegionsSketch]
) -> Outcome:
    """The noiseless Liquid Legions estimate of the combined register vector of `sketches`.

    Registers are grouped by index; groups of more than S registers are dropped. Every remaining
    group counts for reach. With F > 1, a group whose keys all agree and are not "destroyed" adds
    its summed count (each EDP clamps at F+1) to bucket `min(sum, F)`.
    """
    cap = parameters.max_frequency + 1
    groups: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for sketch in sketches:
        for index, key, count in zip(sketch.indexes, sketch.keys, sketch.counts, strict=True):
            groups[int(index)].append((int(key), min(int(count), cap)))
    kept = [g for g in groups.values() if len(g) <= parameters.requisitions]
    active = len(kept)
    reach = estimate_reach_with_sampling(
        parameters.decay_rate, parameters.max_size, active, parameters.vid_sampling_width
    )
    if parameters.max_frequency == 1:
        return Outcome(ReachAndFrequencyResult(reach), active, ())
    histogram = [0] * parameters.max_frequency
    for members in kept:
        keys = {key for key, _ in members}
        if len(keys) == 1 and DESTROYED_KEY not in keys:
            total = sum(count for _, count in members)
            histogram[min(total, parameters.max_frequency) - 1] += 1
    total = sum(histogram)
    if total == 0:
        raise EmptyHistogramError("the frequency histogram is empty")
    frequency = {i + 1: c / total for i, c in enumerate(histogram) if c}
    return Outcome(ReachAndFrequencyResult(reach, frequency), active, tuple(histogram))
