"""LLv2 execution phase two (spec §5.3, §5.6).

Non-aggregator: remove its layer from the three flags and re-randomise them under its partial key,
re-randomise the count under the full key, add its frequency-noise tuples, shuffle. Aggregator:
zero-test the flags, build one SKA row per tuple with flags (1, 0, 0), count the blinded-histogram
tuples and estimate reach. The SKA matrix is never shuffled.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmms.crypto import elgamal
from cmms.crypto.elgamal import CIPHERTEXT_SIZE
from cmms.crypto.randomness import RandomSource
from cmms.protocols.liquid_legions import named_points
from cmms.protocols.liquid_legions.ciphertexts import broadcast, fresh_scalars
from cmms.protocols.liquid_legions.keys import DuchyKeys
from cmms.protocols.liquid_legions.parallel import ExecutionOptions, chunk_bounds, map_chunks
from cmms.protocols.liquid_legions.records import (
    FLAG_A_OFFSET,
    FLAG_B_OFFSET,
    FLAG_C_OFFSET,
    TUPLE_COUNT_OFFSET,
    TUPLE_SIZE,
    record_count,
)
from cmms.protocols.liquid_legions.shuffle import shuffle_records
from cmms.protocols.liquid_legions.tables import public_key
from cmms.protocols.llv2.frequency_noise import frequency_noise_tuples, noise_tuple_count
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters
from cmms.sketch import estimate_reach_with_sampling

_FLAG_OFFSETS = (FLAG_A_OFFSET, FLAG_B_OFFSET, FLAG_C_OFFSET)


@dataclass(frozen=True)
class ExecutionPhaseTwoRequest:
    """The flag/count tuples received from the previous duchy (264 bytes each)."""

    parameters: ReachAndFrequencyParameters
    keys: DuchyKeys
    tuples: bytes


@dataclass(frozen=True)
class ExecutionPhaseTwoResponse:
    """Non-aggregator: the tuples for the next duchy."""

    tuples: bytes


@dataclass(frozen=True)
class AggregatorPhaseTwoResponse:
    """The SKA matrix (row-major, F-1 entries per row; empty when F = 1) and the reach.

    `active_registers` is the noised register count the estimate was made from.
    """

    ska_matrix: bytes
    reach: int
    active_registers: int
    blinded_histogram_tuples: int


# ---------------------------------------------------------------------------------------------
# Non-aggregator


@dataclass(frozen=True)
class _ReRandomizeTask:
    tuples: bytes
    secret: int
    partial_key: bytes
    full_key: bytes
    random: RandomSource


def _rerandomize_task(task: _ReRandomizeTask) -> bytes:
    out = bytearray(len(task.tuples))
    partial = public_key(task.partial_key)
    for offset in _FLAG_OFFSETS:
        with elgamal.decode_ciphertexts(task.tuples, offset=offset, stride=TUPLE_SIZE) as flags:
            elgamal.partial_decrypt_and_rerandomize(
                flags, task.secret, partial, task.random, out=flags
            )
            elgamal.encode_ciphertexts_into(flags, out, offset=offset, stride=TUPLE_SIZE)
    with elgamal.decode_ciphertexts(
        task.tuples, offset=TUPLE_COUNT_OFFSET, stride=TUPLE_SIZE
    ) as counts:
        elgamal.rerandomize(counts, public_key(task.full_key), task.random, out=counts)
        elgamal.encode_ciphertexts_into(counts, out, offset=TUPLE_COUNT_OFFSET, stride=TUPLE_SIZE)
    return bytes(out)


def execution_phase_two_non_aggregator(
    request: ExecutionPhaseTwoRequest,
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> ExecutionPhaseTwoResponse:
    """Strip this duchy's layer from the flags, re-randomise, add frequency noise, shuffle."""
    parameters, keys = request.parameters, request.keys
    count = record_count(request.tuples, TUPLE_SIZE, "phase-two tuples")
    tasks = [
        _ReRandomizeTask(
            request.tuples[start * TUPLE_SIZE : stop * TUPLE_SIZE],
            keys.secret,
            keys.partial_key,
            keys.full_key,
            random.derive(f"phase2/chunk/{i}"),
        )
        for i, (start, stop) in enumerate(chunk_bounds(count, options.chunk_records))
    ]
    parts = map_chunks(_rerandomize_task, tasks, options)
    noiser = parameters.frequency_noiser
    if parameters.max_frequency > 1 and noiser is not None:
        parts.append(
            frequency_noise_tuples(
                noiser,
                parameters.max_frequency,
                keys.partial_key,
                keys.full_key,
                random.derive("frequency_noise"),
                options,
            )
        )
    tuples = shuffle_records(b"".join(parts), TUPLE_SIZE, random.derive("shuffle"))
    return ExecutionPhaseTwoResponse(tuples)


# ---------------------------------------------------------------------------------------------
# Aggregator


@dataclass(frozen=True)
class _ZeroTestTask:
    tuples: bytes
    secret: int
    max_frequency: int
    unit: bytes  # E1 = Enc(P) under the full key
    random: RandomSource


@dataclass(frozen=True)
class _ZeroTestResult:
    histogram_tuples: int
    ska_rows: bytes


def _zero_test_task(task: _ZeroTestTask) -> _ZeroTestResult:
    zero: list[list[bool]] = []
    for offset in _FLAG_OFFSETS:
        with (
            elgamal.decode_ciphertexts(task.tuples, offset=offset, stride=TUPLE_SIZE) as flags,
            elgamal.decrypt(flags, task.secret) as plain,
        ):
            zero.append(plain.is_identity())
    qualifying = [i for i, (a, b, c) in enumerate(zip(*zero, strict=True)) if a and not b and not c]
    histogram_tuples = sum(zero[2])
    entries = task.max_frequency - 1
    if entries == 0 or not qualifying:
        # The counts are still decoded so that a tampered count never passes silently.
        elgamal.decode_ciphertexts(
            task.tuples, offset=TUPLE_COUNT_OFFSET, stride=TUPLE_SIZE
        ).close()
        return _ZeroTestResult(histogram_tuples, b"")
    row_size = entries * CIPHERTEXT_SIZE
    out = bytearray(row_size * len(qualifying))
    with (
        elgamal.decode_ciphertexts(
            task.tuples, offset=TUPLE_COUNT_OFFSET, stride=TUPLE_SIZE
        ) as all_counts,
        all_counts.take(qualifying) as counts,
        broadcast(task.unit, len(qualifying)) as step,
        counts.copy() as shifted,
    ):
        elgamal.negate(step, out=step)
        # Entry t is r_t·(count - t·E1): the identity exactly when the count is t.
        for t in range(entries):
            elgamal.add(shifted, step, out=shifted)
            with elgamal.multiply_each(
                shifted, fresh_scalars(task.random, len(qualifying))
            ) as entry:
                elgamal.encode_ciphertexts_into(
                    entry, out, offset=t * CIPHERTEXT_SIZE, stride=row_size
                )
    return _ZeroTestResult(histogram_tuples, bytes(out))


def reach_noise_baseline(parameters: ReachAndFrequencyParameters) -> int:
    """What the noise adds to the active count on average: o_reach·D + D·Q (when configured)."""
    baseline = 0
    noisers = parameters.reach_noisers
    if noisers is not None:
        baseline += noisers.global_reach.offset * parameters.duchies
    noiser = parameters.frequency_noiser
    if parameters.max_frequency > 1 and noiser is not None:
        baseline += parameters.duchies * noise_tuple_count(noiser, parameters.max_frequency)
    return baseline


def execution_phase_two_aggregator(
    request: ExecutionPhaseTwoRequest,
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> AggregatorPhaseTwoResponse:
    """Zero tests, SKA matrix rows and the reach estimate, all chunks in parallel."""
    parameters, keys = request.parameters, request.keys
    count = record_count(request.tuples, TUPLE_SIZE, "phase-two tuples")
    unit = elgamal.encrypt_one(
        public_key(keys.full_key), named_points.unit_point(), random.derive("unit")
    )
    tasks = [
        _ZeroTestTask(
            request.tuples[start * TUPLE_SIZE : stop * TUPLE_SIZE],
            keys.secret,
            parameters.max_frequency,
            unit,
            random.derive(f"phase2/ska/{i}"),
        )
        for i, (start, stop) in enumerate(chunk_bounds(count, options.chunk_records))
    ]
    results = map_chunks(_zero_test_task, tasks, options)
    histogram_tuples = sum(r.histogram_tuples for r in results)
    active = max(0, count - histogram_tuples - reach_noise_baseline(parameters))
    reach = estimate_reach_with_sampling(
        parameters.decay_rate, parameters.max_size, active, parameters.vid_sampling_width
    )
    return AggregatorPhaseTwoResponse(
        ska_matrix=b"".join(r.ska_rows for r in results),
        reach=reach,
        active_registers=active,
        blinded_histogram_tuples=histogram_tuples,
    )
