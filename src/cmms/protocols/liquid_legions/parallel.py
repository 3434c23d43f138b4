"""The chunk map every per-record loop runs through.

A payload is cut into chunks of a fixed number of records; each chunk is one task, processed in
a worker process when `parallelism > 1`. Chunk boundaries and the per-chunk random sources
depend only on the payload and the options, never on the number of workers, so a seeded run
gives identical bytes at any parallelism. Tasks and results are plain bytes and ints: native
points never cross processes, and each worker builds its fixed-base tables once (see `tables`).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from cmms.protocols.liquid_legions.errors import InvalidStageInputError

DEFAULT_CHUNK_RECORDS = 4096  # ~8 MB of native points per R&F chunk; 25 tasks at N = 1e5

Task = TypeVar("Task")
Result = TypeVar("Result")


@dataclass(frozen=True)
class ExecutionOptions:
    """How a stage spreads its work: worker processes and records per chunk."""

    parallelism: int = 1
    chunk_records: int = DEFAULT_CHUNK_RECORDS

    def __post_init__(self) -> None:
        if self.parallelism < 1:
            raise InvalidStageInputError(f"parallelism must be at least 1, got {self.parallelism}")
        if self.chunk_records < 1:
            raise InvalidStageInputError(
                f"chunk size must be at least 1 record, got {self.chunk_records}"
            )


def chunk_bounds(count: int, chunk_records: int) -> list[tuple[int, int]]:
    """`[start, stop)` record ranges covering `count` records."""
    return [(start, min(start + chunk_records, count)) for start in range(0, count, chunk_records)]


def map_chunks(
    function: Callable[[Task], Result], tasks: Sequence[Task], options: ExecutionOptions
) -> list[Result]:
    """`[function(t) for t in tasks]`, in order, over `options.parallelism` processes."""
    workers = min(options.parallelism, len(tasks))
    if workers <= 1:
        return [function(task) for task in tasks]
    # fork: workers start at once with the parent's modules imported; the crypto layer resets its
    # native group state in the child, and `tables` keys its cache by process.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return list(pool.map(function, tasks))
