"""What a local system looks like: population, noise, storage, and how fast its loops poll."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

# Small enough that a demo of all four protocols takes about two minutes on two cores (Liquid
# Legions' time grows with the reach).
DEFAULT_POPULATION_SIZE = 3_000


@dataclass(frozen=True)
class LocalOptions:
    """Settings of `cmms local up` (and of the system `cmms demo` starts).

    `database` is `sqlite` (one file per party under the workdir) or a PostgreSQL server URL
    (one database per party on it, created when missing). `blob_storage` is a base URL each duchy
    gets its own folder under; default `file://{workdir}/blobs`. `duchy_databases` gives single
    duchies their own database URL instead (`sqlite:///...`, `postgresql://...` or
    `spanner://projects/P/instances/I/databases/D`), e.g. one duchy on Spanner, the rest on SQLite.
    """

    workdir: Path
    population_size: int = DEFAULT_POPULATION_SIZE
    population_seed: int = 1
    # Share of each EDP's audience drawn from the audience shared by all EDPs.
    overlap: float = 0.5
    # Share of the population each EDP reaches.
    reach_fraction: float = 0.3
    noise: bool = True
    database: str = "sqlite"
    blob_storage: str | None = None
    duchy_databases: Mapping[str, str] = field(default_factory=dict)
    # Local loops poll far more often than production ones: a laptop has nothing to save.
    edp_poll_interval_seconds: float = 0.5
    # Schedulers learn of new work from the internal API at once (AwaitWork); this only bounds
    # how late they notice expired locks and delayed retries.
    scheduler_polling_delay: str = "1s"
    # Worker processes of each LLv2 mill job's kernels (0: one per CPU).
    mill_parallelism: int = 0
    # Each mill scheduler keeps a loaded interpreter waiting for the next job: a stage then
    # starts without a second or more of start-up (LLv2 has eleven stages in a row).
    mill_warm_standby: bool = True
    # Mill jobs each duchy's scheduler runs at once, per mill type (LLv2, HMSS, TrusTee).
    mill_maximum_concurrency: int = 1
    # How long a claim lasts before another mill job may take the work over (the scheduler's
    # claims and the jobs' own); every stage has to end well inside it.
    work_lock_duration: timedelta = timedelta(minutes=5)
    startup_timeout_seconds: float = 180.0
    stop_grace_seconds: float = 15.0

    @property
    def resolved_mill_parallelism(self) -> int:
        return self.mill_parallelism or os.cpu_count() or 1

    def __post_init__(self) -> None:
        if self.population_size < 1:
            raise ValueError(f"the population needs at least one VID, got {self.population_size}")
        if not 0 <= self.overlap <= 1:
            raise ValueError(f"overlap must be in [0, 1], got {self.overlap}")
        if not 0 < self.reach_fraction <= 1:
            raise ValueError(f"reach fraction must be in (0, 1], got {self.reach_fraction}")
        if self.mill_maximum_concurrency < 1:
            raise ValueError(
                f"mill concurrency must be at least 1, got {self.mill_maximum_concurrency}"
            )
        if self.work_lock_duration <= timedelta(0):
            raise ValueError(
                f"the work lock duration must be positive, got {self.work_lock_duration}"
            )
