"""LLv2 execution phase three (spec §5.4), only when F > 1.

Non-aggregator: remove its layer from every SKA entry, keeping the order. Aggregator: per row,
the first entry that decrypts to the identity gives the count; rows without one are "F or more".
Rows are tested column by column, so a row stops costing anything once its zero is found.
"""

from __future__ import annotations

from dataclasses import dataclass

from cmms.crypto import elgamal, group
from cmms.crypto.elgamal import CIPHERTEXT_SIZE
from cmms.crypto.group import POINT_SIZE
from cmms.protocols.liquid_legions.errors import EmptyHistogramError, InvalidStageInputError
from cmms.protocols.liquid_legions.keys import DuchyKeys
from cmms.protocols.liquid_legions.parallel import ExecutionOptions, chunk_bounds, map_chunks
from cmms.protocols.liquid_legions.records import record_count
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters


@dataclass(frozen=True)
class ExecutionPhaseThreeRequest:
    """The SKA matrix received from the previous duchy."""

    parameters: ReachAndFrequencyParameters
    keys: DuchyKeys
    ska_matrix: bytes


@dataclass(frozen=True)
class ExecutionPhaseThreeResponse:
    """Non-aggregator: the SKA matrix with one layer fewer, in the same order."""

    ska_matrix: bytes


@dataclass(frozen=True)
class AggregatorPhaseThreeResponse:
    """The raw histogram (bucket i = frequency i+1, last = "F or more") and the distribution."""

    histogram: tuple[int, ...]
    frequency: dict[int, float]


def _row_size(parameters: ReachAndFrequencyParameters) -> int:
    if parameters.max_frequency < 2:
        raise InvalidStageInputError("phase three runs only when the maximum frequency exceeds 1")
    return (parameters.max_frequency - 1) * CIPHERTEXT_SIZE


def _rows(request: ExecutionPhaseThreeRequest) -> int:
    return record_count(request.ska_matrix, _row_size(request.parameters), "SKA matrix")


@dataclass(frozen=True)
class _PartialDecryptTask:
    entries: bytes
    secret: int


def _partial_decrypt_task(task: _PartialDecryptTask) -> bytes:
    # u is unchanged by a partial decryption: copy its bytes, encode only the new e.
    out = bytearray(task.entries)
    with elgamal.decode_ciphertexts(task.entries) as cts:
        elgamal.partial_decrypt(cts, task.secret, out=cts)
        group.encode_points_into(cts.e, out, offset=POINT_SIZE, stride=CIPHERTEXT_SIZE)
    return bytes(out)


def execution_phase_three_non_aggregator(
    request: ExecutionPhaseThreeRequest, options: ExecutionOptions = ExecutionOptions()
) -> ExecutionPhaseThreeResponse:
    """Partially decrypt every SKA entry; no re-randomisation, no reordering."""
    rows = _rows(request)
    entries = rows * (request.parameters.max_frequency - 1)
    matrix = request.ska_matrix
    tasks = [
        _PartialDecryptTask(
            matrix[start * CIPHERTEXT_SIZE : stop * CIPHERTEXT_SIZE], request.keys.secret
        )
        for start, stop in chunk_bounds(entries, options.chunk_records)
    ]
    return ExecutionPhaseThreeResponse(b"".join(map_chunks(_partial_decrypt_task, tasks, options)))


@dataclass(frozen=True)
class _FirstZeroTask:
    rows: bytes
    entries: int
    secret: int


def _first_zero_task(task: _FirstZeroTask) -> list[int]:
    """Per row, the 1-based column of its first zero entry, or 0 if it has none."""
    row_size = task.entries * CIPHERTEXT_SIZE
    rows = len(task.rows) // row_size
    found = [0] * rows
    pending = list(range(rows))
    for column in range(task.entries):
        if not pending:
            break
        start = column * CIPHERTEXT_SIZE
        gathered = b"".join(
            task.rows[r * row_size + start : r * row_size + start + CIPHERTEXT_SIZE]
            for r in pending
        )
        with (
            elgamal.decode_ciphertexts(gathered) as cts,
            elgamal.decrypt(cts, task.secret) as plain,
        ):
            zero = plain.is_identity()
        for r, is_zero in zip(pending, zero, strict=True):
            if is_zero:
                found[r] = column + 1
        pending = [r for r, is_zero in zip(pending, zero, strict=True) if not is_zero]
    return found


def execution_phase_three_aggregator(
    request: ExecutionPhaseThreeRequest, options: ExecutionOptions = ExecutionOptions()
) -> AggregatorPhaseThreeResponse:
    """The frequency histogram, noise baseline removed and clamped, and its distribution.

    Entries after a row's first zero are never decoded, so tampering with them goes unnoticed.
    """
    parameters = request.parameters
    rows = _rows(request)
    row_size = _row_size(parameters)
    entries = parameters.max_frequency - 1
    chunk_rows = max(1, options.chunk_records // entries)
    tasks = [
        _FirstZeroTask(
            request.ska_matrix[start * row_size : stop * row_size], entries, request.keys.secret
        )
        for start, stop in chunk_bounds(rows, chunk_rows)
    ]
    histogram = [0] * parameters.max_frequency
    histogram[-1] = rows
    for found in map_chunks(_first_zero_task, tasks, options):
        for column in found:
            if column:
                histogram[column - 1] += 1
                histogram[-1] -= 1
    noiser = parameters.frequency_noiser
    counts = list(histogram)
    if noiser is not None:
        baseline = noiser.offset * parameters.duchies
        counts = [max(0, c - baseline) for c in counts]
    total = sum(counts)
    if total == 0:
        raise EmptyHistogramError("the frequency histogram is empty after noise removal")
    frequency = {i + 1: c / total for i, c in enumerate(counts) if c}
    return AggregatorPhaseThreeResponse(tuple(histogram), frequency)
