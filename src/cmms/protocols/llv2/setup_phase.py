"""LLv2 setup phase (spec §5.1): noise registers in, shuffle; no re-randomisation.

Every duchy runs the same routine; the aggregator's input also holds the setup outputs received
from the non-aggregators. With F = 1 the keys and counts of the duchy's own requisition registers
are replaced first, so every real group looks flagged-destroyed and only counting matters.

Point validity is not checked here (nothing is decoded): a tampered register is caught by the
next duchy that decodes it, W_0 in phase one.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmms.crypto import elgamal, group
from cmms.crypto.group import ORDER
from cmms.crypto.randomness import RandomSource, random_scalar
from cmms.protocols.liquid_legions import named_points
from cmms.protocols.liquid_legions.encryption import encrypt_records
from cmms.protocols.liquid_legions.keys import DuchyKeys
from cmms.protocols.liquid_legions.parallel import ExecutionOptions, chunk_bounds, map_chunks
from cmms.protocols.liquid_legions.records import (
    COUNT_OFFSET,
    KEY_OFFSET,
    REGISTER_SIZE,
    record_count,
)
from cmms.protocols.liquid_legions.setup_noise import setup_noise
from cmms.protocols.liquid_legions.shuffle import shuffle_records
from cmms.protocols.liquid_legions.tables import public_key
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters


@dataclass(frozen=True)
class SetupPhaseRequest:
    """Own requisition payloads and, at the aggregator, the D-1 received setup outputs."""

    parameters: ReachAndFrequencyParameters
    keys: DuchyKeys
    requisitions: tuple[bytes, ...]
    received: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class SetupPhaseResponse:
    """The noised, shuffled register vector (198-byte registers)."""

    registers: bytes


@dataclass(frozen=True)
class _RewriteTask:
    registers: bytes
    full_key: bytes
    random: RandomSource


def _rewrite_task(task: _RewriteTask) -> bytes:
    # Key <- Enc(K_destroyed), count <- Enc(random point); the index ciphertext passes unchanged.
    count = record_count(task.registers, REGISTER_SIZE, "requisition")
    counts = [
        named_points.random_point(
            named_points.RANDOM_COUNT_PREFIX, random_scalar(task.random, ORDER)
        )
        for _ in range(count)
    ]
    out = bytearray(task.registers)
    key = public_key(task.full_key)
    with (
        group.decode_points(named_points.destroyed_key()) as destroyed,
        destroyed.take([0] * count) as keys,
        elgamal.encrypt(key, keys, task.random) as cts,
    ):
        elgamal.encode_ciphertexts_into(cts, out, offset=KEY_OFFSET, stride=REGISTER_SIZE)
    with (
        group.decode_points(b"".join(counts)) as points,
        elgamal.encrypt(key, points, task.random) as cts,
    ):
        elgamal.encode_ciphertexts_into(cts, out, offset=COUNT_OFFSET, stride=REGISTER_SIZE)
    return bytes(out)


def _rewrite_own_registers(
    registers: bytes, full_key: bytes, random: RandomSource, options: ExecutionOptions
) -> bytes:
    count = len(registers) // REGISTER_SIZE
    tasks = [
        _RewriteTask(
            registers[start * REGISTER_SIZE : stop * REGISTER_SIZE],
            full_key,
            random.derive(f"rewrite/chunk/{i}"),
        )
        for i, (start, stop) in enumerate(chunk_bounds(count, options.chunk_records))
    ]
    return b"".join(map_chunks(_rewrite_task, tasks, options))


def setup_phase(
    request: SetupPhaseRequest,
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> SetupPhaseResponse:
    """Append this duchy's noise registers to its input and shuffle everything."""
    parameters, keys = request.parameters, request.keys
    for i, blob in enumerate(request.requisitions):
        record_count(blob, REGISTER_SIZE, f"requisition {i}")
    for i, blob in enumerate(request.received):
        record_count(blob, REGISTER_SIZE, f"received setup output {i}")
    own = b"".join(request.requisitions)
    if parameters.max_frequency == 1:
        own = _rewrite_own_registers(own, keys.full_key, random.derive("rewrite"), options)
    parts = [own, *request.received]
    noisers = parameters.reach_noisers
    if noisers is not None:
        noise = setup_noise(noisers, parameters.requisitions, random.derive("noise"))
        fields = [[register[f] for register in noise.registers] for f in range(3)]
        parts.append(
            encrypt_records(
                fields, [keys.full_key] * 3, random.derive("noise/encrypt"), "setup_noise", options
            )
        )
    registers = shuffle_records(b"".join(parts), REGISTER_SIZE, random.derive("shuffle"))
    return SetupPhaseResponse(registers)
