"""The duchy's computations database on Cloud Spanner (google-cloud-spanner; the `gcp` extra).

Selected by `spanner://projects/P/instances/I/databases/D` (see `cmms.duchy.db.backends`). The
repositories implement the Protocols of `cmms.duchy.db.interfaces` with the same semantics as the
SQLAlchemy ones; the sync SDK runs in worker threads behind the async methods.
"""

from __future__ import annotations

from cmms.duchy.db.spanner.computations import SpannerComputationsRepository
from cmms.duchy.db.spanner.continuation_tokens import SpannerContinuationTokensRepository
from cmms.duchy.db.spanner.migrate import current_spanner_revision, upgrade_spanner
from cmms.duchy.db.spanner.stats import SpannerComputationStatsRepository

__all__ = [
    "SpannerComputationStatsRepository",
    "SpannerComputationsRepository",
    "SpannerContinuationTokensRepository",
    "current_spanner_revision",
    "upgrade_spanner",
]
