"""Chunk tasks that encrypt plaintext points into fixed-size ciphertext records.

Messages travel as 33-byte points; 33 zero bytes stand for the identity (an encryption of zero).
Field `f` of each record is encrypted under `keys[f]`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cmms.crypto import elgamal, group
from cmms.crypto.elgamal import CIPHERTEXT_SIZE
from cmms.crypto.group import POINT_SIZE, Points
from cmms.crypto.randomness import RandomSource
from cmms.protocols.liquid_legions.parallel import ExecutionOptions, chunk_bounds, map_chunks
from cmms.protocols.liquid_legions.tables import public_key

IDENTITY = bytes(POINT_SIZE)


def messages_to_points(messages: Sequence[bytes]) -> Points:
    """A batch of the given points, `IDENTITY` entries becoming the identity."""
    present = [i for i, m in enumerate(messages) if m != IDENTITY]
    if len(present) == len(messages):
        return group.decode_points(b"".join(messages))
    with (
        group.decode_points(b"".join(messages[i] for i in present)) as decoded,
        group.Points(1) as identity,
        group.Points.concat([decoded, identity]) as pool,
    ):
        slot = {i: rank for rank, i in enumerate(present)}
        return pool.take(slot.get(i, len(present)) for i in range(len(messages)))


@dataclass(frozen=True)
class EncryptTask:
    """Encrypt `fields[f][r]` under `keys[f]` into record `r`, field `f`."""

    fields: tuple[tuple[bytes, ...], ...]
    keys: tuple[bytes, ...]
    random: RandomSource


def encrypt_task(task: EncryptTask) -> bytes:
    """The records of one chunk: `len(fields)` ciphertexts each."""
    records = len(task.fields[0]) if task.fields else 0
    record_size = CIPHERTEXT_SIZE * len(task.fields)
    out = bytearray(record_size * records)
    for f, (messages, element) in enumerate(zip(task.fields, task.keys, strict=True)):
        with (
            messages_to_points(messages) as points,
            elgamal.encrypt(public_key(element), points, task.random) as cts,
        ):
            elgamal.encode_ciphertexts_into(
                cts, out, offset=f * CIPHERTEXT_SIZE, stride=record_size
            )
    return bytes(out)


def encrypt_records(
    fields: Sequence[Sequence[bytes]],
    keys: Sequence[bytes],
    random: RandomSource,
    label: str,
    options: ExecutionOptions,
) -> bytes:
    """All records, encrypted chunk by chunk (chunk `i` draws from `random.derive(label/i)`)."""
    count = len(fields[0]) if fields else 0
    tasks = [
        EncryptTask(
            fields=tuple(tuple(column[start:stop]) for column in fields),
            keys=tuple(keys),
            random=random.derive(f"{label}/chunk/{i}"),
        )
        for i, (start, stop) in enumerate(chunk_bounds(count, options.chunk_records))
    ]
    return b"".join(map_chunks(encrypt_task, tasks, options))
