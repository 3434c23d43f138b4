"""Reach-only LLv2 execution phase (spec §5R).

Non-aggregator: remove its layer from the excess-noise ciphertext, blind every register with one
per-execution Pohlig-Hellman key, shuffle. Aggregator: decrypt the excess noise (a small multiple
of P, found by table lookup), decrypt every blinded index, count distinct ones, remove the noise
baselines and estimate reach.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmms.crypto import elgamal, group
from cmms.crypto.group import ORDER, POINT_SIZE
from cmms.crypto.randomness import RandomSource, random_scalar
from cmms.protocols.liquid_legions import named_points
from cmms.protocols.liquid_legions.errors import InvalidStageInputError
from cmms.protocols.liquid_legions.keys import DuchyKeys
from cmms.protocols.liquid_legions.parallel import ExecutionOptions, chunk_bounds, map_chunks
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters
from cmms.protocols.liquid_legions.records import (
    REACH_ONLY_REGISTER_SIZE,
    split_trailing_ciphertext,
)
from cmms.protocols.liquid_legions.shuffle import shuffle_records
from cmms.sketch import estimate_reach_with_sampling

# The publisher-noise id and the padding id each survive as one distinct register.
NOISE_IDS = 2


@dataclass(frozen=True)
class ExecutionPhaseRequest:
    """The registers plus trailing excess-noise ciphertext from the previous duchy."""

    parameters: LiquidLegionsParameters
    keys: DuchyKeys
    payload: bytes


@dataclass(frozen=True)
class ExecutionPhaseResponse:
    """Non-aggregator: the payload for the next duchy."""

    payload: bytes


@dataclass(frozen=True)
class AggregatorExecutionPhaseResponse:
    """The reach, with the counts it was estimated from."""

    reach: int
    active_registers: int
    distinct_registers: int
    excess_noise: int


@dataclass(frozen=True)
class _BlindTask:
    registers: bytes
    secret: int
    ph_key: int


def _blind_task(task: _BlindTask) -> bytes:
    with elgamal.decode_ciphertexts(task.registers) as cts:
        elgamal.blind(cts, task.secret, task.ph_key, out=cts)
        return elgamal.encode_ciphertexts(cts)


def _chunks(registers: bytes, options: ExecutionOptions) -> list[bytes]:
    count = len(registers) // REACH_ONLY_REGISTER_SIZE
    size = REACH_ONLY_REGISTER_SIZE
    return [
        registers[start * size : stop * size]
        for start, stop in chunk_bounds(count, options.chunk_records)
    ]


def execution_phase_non_aggregator(
    request: ExecutionPhaseRequest,
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> ExecutionPhaseResponse:
    """Partially decrypt the noise ciphertext, blind and shuffle the registers."""
    registers, noise = split_trailing_ciphertext(
        request.payload, REACH_ONLY_REGISTER_SIZE, "execution-phase payload"
    )
    secret = request.keys.secret
    noise = elgamal.partial_decrypt_one(noise, secret)
    ph_key = random_scalar(random.derive("pohlig_hellman"), ORDER)
    tasks = [_BlindTask(chunk, secret, ph_key) for chunk in _chunks(registers, options)]
    blinded = b"".join(map_chunks(_blind_task, tasks, options))
    shuffled = shuffle_records(blinded, REACH_ONLY_REGISTER_SIZE, random.derive("shuffle"))
    return ExecutionPhaseResponse(shuffled + noise)


@dataclass(frozen=True)
class _DecryptTask:
    registers: bytes
    secret: int


def _decrypt_task(task: _DecryptTask) -> bytes:
    with (
        elgamal.decode_ciphertexts(task.registers) as cts,
        elgamal.decrypt(cts, task.secret) as plain,
    ):
        # An identity means a tampered register; encoding refuses it with IdentityPointError.
        return group.encode_points(plain)


def excess_noise_bound(parameters: LiquidLegionsParameters) -> int:
    """The largest possible summed excess noise, 2·o_bh·S·D (0 without reach noise)."""
    noisers = parameters.reach_noisers
    if noisers is None:
        return 0
    return 2 * noisers.blinded_histogram.offset * parameters.requisitions * parameters.duchies


def _excess_noise(point: bytes | None, bound: int) -> int:
    if point is None:
        return 0
    for value, multiple in enumerate(named_points.unit_multiples(bound), start=1):
        if multiple == point:
            return value
    raise InvalidStageInputError(f"the excess-noise plaintext is not i·P for any i in 1..{bound}")


def execution_phase_aggregator(
    request: ExecutionPhaseRequest, options: ExecutionOptions = ExecutionOptions()
) -> AggregatorExecutionPhaseResponse:
    """Count distinct blinded indices, subtract the noise, estimate reach."""
    parameters = request.parameters
    registers, noise = split_trailing_ciphertext(
        request.payload, REACH_ONLY_REGISTER_SIZE, "execution-phase payload"
    )
    secret = request.keys.secret
    excess = _excess_noise(elgamal.decrypt_one(noise, secret), excess_noise_bound(parameters))
    tasks = [_DecryptTask(chunk, secret) for chunk in _chunks(registers, options)]
    distinct: set[bytes] = set()
    for blinded in map_chunks(_decrypt_task, tasks, options):
        distinct.update(blinded[i : i + POINT_SIZE] for i in range(0, len(blinded), POINT_SIZE))
    active = len(distinct) - excess
    noisers = parameters.reach_noisers
    if noisers is not None:
        active -= NOISE_IDS + noisers.global_reach.offset * parameters.duchies
    active = max(0, active)
    reach = estimate_reach_with_sampling(
        parameters.decay_rate, parameters.max_size, active, parameters.vid_sampling_width
    )
    return AggregatorExecutionPhaseResponse(reach, active, len(distinct), excess)
