"""LLv2 execution phase one (spec §5.2).

Non-aggregator: blind every index ciphertext with one per-execution Pohlig-Hellman key and
re-randomise keys and counts under the full key, then shuffle. Aggregator: decrypt the blinded
indices, group registers with equal blinded index, drop groups larger than S, and turn each
remaining group into a flag/count tuple; append its frequency-noise tuples and shuffle.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from cmms.crypto import elgamal, group
from cmms.crypto.elgamal import CIPHERTEXT_SIZE, Ciphertexts
from cmms.crypto.group import ORDER, POINT_SIZE
from cmms.crypto.randomness import RandomSource, random_scalar
from cmms.protocols.liquid_legions import named_points
from cmms.protocols.liquid_legions.ciphertexts import (
    broadcast,
    fresh_scalars,
    products,
    subtract,
    zero_encryptions,
)
from cmms.protocols.liquid_legions.keys import DuchyKeys
from cmms.protocols.liquid_legions.parallel import ExecutionOptions, chunk_bounds, map_chunks
from cmms.protocols.liquid_legions.records import (
    COUNT_OFFSET,
    INDEX_OFFSET,
    KEY_OFFSET,
    REGISTER_SIZE,
    TUPLE_SIZE,
    record_count,
)
from cmms.protocols.liquid_legions.shuffle import shuffle_records
from cmms.protocols.liquid_legions.tables import public_key
from cmms.protocols.llv2.frequency_noise import frequency_noise_tuples
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters


@dataclass(frozen=True)
class ExecutionPhaseOneRequest:
    """The register vector received from the previous duchy (198-byte registers)."""

    parameters: ReachAndFrequencyParameters
    keys: DuchyKeys
    registers: bytes


@dataclass(frozen=True)
class ExecutionPhaseOneResponse:
    """Non-aggregator: the blinded register vector. Aggregator: the flag/count tuples, with how
    many groups were kept (size <= S) and how many registers they held."""

    payload: bytes
    kept_groups: int = 0
    kept_registers: int = 0


# ---------------------------------------------------------------------------------------------
# Non-aggregator


@dataclass(frozen=True)
class _BlindTask:
    registers: bytes
    secret: int
    ph_key: int
    full_key: bytes
    random: RandomSource


def _blind_task(task: _BlindTask) -> bytes:
    out = bytearray(len(task.registers))
    with elgamal.decode_ciphertexts(
        task.registers, offset=INDEX_OFFSET, stride=REGISTER_SIZE
    ) as idx:
        elgamal.blind(idx, task.secret, task.ph_key, out=idx)
        elgamal.encode_ciphertexts_into(idx, out, offset=INDEX_OFFSET, stride=REGISTER_SIZE)
    key = public_key(task.full_key)
    for offset in (KEY_OFFSET, COUNT_OFFSET):
        with elgamal.decode_ciphertexts(task.registers, offset=offset, stride=REGISTER_SIZE) as cts:
            elgamal.rerandomize(cts, key, task.random, out=cts)
            elgamal.encode_ciphertexts_into(cts, out, offset=offset, stride=REGISTER_SIZE)
    return bytes(out)


def execution_phase_one_non_aggregator(
    request: ExecutionPhaseOneRequest,
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> ExecutionPhaseOneResponse:
    """Blind indices, re-randomise keys and counts, shuffle."""
    count = record_count(request.registers, REGISTER_SIZE, "phase-one registers")
    # One PH key for the whole execution, drawn here so every chunk applies the same one.
    ph_key = random_scalar(random.derive("pohlig_hellman"), ORDER)
    tasks = [
        _BlindTask(
            request.registers[start * REGISTER_SIZE : stop * REGISTER_SIZE],
            request.keys.secret,
            ph_key,
            request.keys.full_key,
            random.derive(f"phase1/chunk/{i}"),
        )
        for i, (start, stop) in enumerate(chunk_bounds(count, options.chunk_records))
    ]
    blinded = b"".join(map_chunks(_blind_task, tasks, options))
    return ExecutionPhaseOneResponse(
        shuffle_records(blinded, REGISTER_SIZE, random.derive("shuffle"))
    )


# ---------------------------------------------------------------------------------------------
# Aggregator


@dataclass(frozen=True)
class _DecryptIndexTask:
    registers: bytes
    secret: int


def _decrypt_index_task(task: _DecryptIndexTask) -> bytes:
    with (
        elgamal.decode_ciphertexts(
            task.registers, offset=INDEX_OFFSET, stride=REGISTER_SIZE
        ) as idx,
        elgamal.decrypt(idx, task.secret) as blinded,
    ):
        # An identity here means a tampered index; encoding refuses it with IdentityPointError.
        return group.encode_points(blinded)


@dataclass(frozen=True)
class _GroupTask:
    """Groups laid out member by member: `members` holds key || count (132 bytes) per member."""

    members: bytes
    sizes: tuple[int, ...]
    destroyed: bytes  # E_D
    histogram: bytes  # E_BH
    full_key: bytes
    random: RandomSource


_MEMBER_SIZE = 2 * CIPHERTEXT_SIZE


def _group_task(task: _GroupTask) -> bytes:
    out = bytearray(TUPLE_SIZE * len(task.sizes))
    starts: list[int] = []
    position = 0
    for size in task.sizes:
        starts.append(position)
        position += size
    by_size: dict[int, list[int]] = defaultdict(list)
    for g, size in enumerate(task.sizes):
        by_size[size].append(g)
    written = 0
    with (
        elgamal.decode_ciphertexts(task.members, offset=0, stride=_MEMBER_SIZE) as keys,
        elgamal.decode_ciphertexts(
            task.members, offset=CIPHERTEXT_SIZE, stride=_MEMBER_SIZE
        ) as counts,
    ):
        for size in sorted(by_size):
            groups = by_size[size]
            ranks = [[starts[g] + t for g in groups] for t in range(size)]
            block = _tuples_of_size(keys, counts, ranks, task)
            start = written * TUPLE_SIZE
            out[start : start + len(block)] = block
            written += len(groups)
    return bytes(out)


def _tuples_of_size(
    keys: Ciphertexts, counts: Ciphertexts, ranks: list[list[int]], task: _GroupTask
) -> bytes:
    # All groups of one size at once; ranks[t] lists member t of every group.
    n = len(ranks[0])
    random = task.random
    nonces = fresh_scalars(random, n)
    out = bytearray(TUPLE_SIZE * n)
    with (
        keys.take(ranks[0]) as first_key,
        zero_encryptions(task.full_key, nonces) as flag_a,
    ):
        if len(ranks) == 1:
            # Known randomness: r'·Enc(0; r) = Enc(0; r·r'), two table products instead of two
            # variable-base multiplications.
            mask = zero_encryptions(task.full_key, products(nonces, fresh_scalars(random, n)))
            with mask, counts.take(ranks[0]) as count:
                elgamal.add(count, mask, out=count)
                elgamal.encode_ciphertexts_into(
                    count, out, offset=3 * CIPHERTEXT_SIZE, stride=TUPLE_SIZE
                )
        else:
            for member in ranks[1:]:
                with keys.take(member) as other, subtract(other, first_key) as term:
                    elgamal.multiply_each(term, fresh_scalars(random, n), out=term)
                    elgamal.add(flag_a, term, out=flag_a)
            with counts.take(ranks[0]) as count:
                for member in ranks[1:]:
                    with counts.take(member) as other:
                        elgamal.add(count, other, out=count)
                with elgamal.multiply_each(flag_a, fresh_scalars(random, n)) as mask:
                    elgamal.add(count, mask, out=count)
                elgamal.encode_ciphertexts_into(
                    count, out, offset=3 * CIPHERTEXT_SIZE, stride=TUPLE_SIZE
                )
        elgamal.encode_ciphertexts_into(flag_a, out, offset=0, stride=TUPLE_SIZE)
        for slot, target in ((1, task.destroyed), (2, task.histogram)):
            with broadcast(target, n) as flag:
                elgamal.add(flag, flag_a, out=flag)
                with subtract(flag, first_key) as difference:
                    elgamal.multiply_each(difference, fresh_scalars(random, n), out=difference)
                    elgamal.encode_ciphertexts_into(
                        difference, out, offset=slot * CIPHERTEXT_SIZE, stride=TUPLE_SIZE
                    )
    return bytes(out)


def _group_by_blinded_index(blinded: bytes) -> list[list[int]]:
    # Compressed encodings are canonical: equal points have equal bytes (pitfall 16).
    groups: dict[bytes, list[int]] = defaultdict(list)
    for i in range(len(blinded) // POINT_SIZE):
        groups[blinded[i * POINT_SIZE : (i + 1) * POINT_SIZE]].append(i)
    return list(groups.values())


def _group_tasks(
    registers: bytes,
    groups: list[list[int]],
    destroyed: bytes,
    histogram: bytes,
    full_key: bytes,
    random: RandomSource,
    options: ExecutionOptions,
) -> list[_GroupTask]:
    tasks: list[_GroupTask] = []
    batch: list[list[int]] = []
    members = 0

    def flush() -> None:
        body = b"".join(
            registers[p * REGISTER_SIZE + KEY_OFFSET : (p + 1) * REGISTER_SIZE]
            for members_of in batch
            for p in members_of
        )
        tasks.append(
            _GroupTask(
                body,
                tuple(len(g) for g in batch),
                destroyed,
                histogram,
                full_key,
                random.derive(f"phase1/groups/{len(tasks)}"),
            )
        )

    for members_of in groups:
        batch.append(members_of)
        members += len(members_of)
        if members >= options.chunk_records:
            flush()
            batch, members = [], 0
    if batch:
        flush()
    return tasks


def execution_phase_one_aggregator(
    request: ExecutionPhaseOneRequest,
    random: RandomSource,
    options: ExecutionOptions = ExecutionOptions(),
) -> ExecutionPhaseOneResponse:
    """Decrypt blinded indices, build one flag/count tuple per group of at most S registers."""
    parameters, keys = request.parameters, request.keys
    registers = request.registers
    count = record_count(registers, REGISTER_SIZE, "phase-one registers")
    index_tasks = [
        _DecryptIndexTask(registers[start * REGISTER_SIZE : stop * REGISTER_SIZE], keys.secret)
        for start, stop in chunk_bounds(count, options.chunk_records)
    ]
    blinded = b"".join(map_chunks(_decrypt_index_task, index_tasks, options))
    # Groups larger than S are publisher and padding noise; they vanish here.
    groups = [g for g in _group_by_blinded_index(blinded) if len(g) <= parameters.requisitions]
    full = public_key(keys.full_key)
    constants = random.derive("constants")
    destroyed = elgamal.encrypt_one(full, named_points.destroyed_key(), constants)
    histogram = elgamal.encrypt_one(full, named_points.blinded_histogram_key(), constants)
    # Key and count ciphertexts are validated when the group tasks decode them.
    tasks = _group_tasks(registers, groups, destroyed, histogram, keys.full_key, random, options)
    parts = map_chunks(_group_task, tasks, options)
    noiser = parameters.frequency_noiser
    if parameters.max_frequency > 1 and noiser is not None:
        parts.append(
            frequency_noise_tuples(
                noiser,
                parameters.max_frequency,
                keys.full_key,
                keys.full_key,
                random.derive("frequency_noise"),
                options,
            )
        )
    tuples = shuffle_records(b"".join(parts), TUPLE_SIZE, random.derive("shuffle"))
    return ExecutionPhaseOneResponse(tuples, len(groups), sum(len(g) for g in groups))
