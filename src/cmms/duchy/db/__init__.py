"""The duchy's computations database: schema, migrations and repositories (SQLAlchemy Core).

Backends are chosen by URL: `sqlite:///path` (default, embedded; always a file, as every pooled
connection must see the same database), `postgresql://...` (psycopg 3) or
`spanner://projects/P/instances/I/databases/D` (Cloud Spanner, `cmms.duchy.db.spanner`). Protocol messages are
stored as opaque bytes, so nothing here depends on generated protobuf code; stages are
`(protocol, stage)` numbers checked against `cmms.protocols.stages`.

A service uses it like this::

    database = open_duchy_database(url)            # once per process, any backend
    await upgrade_duchy_database(url)              # or `cmms duchy db migrate` before start
    computations = database.computations           # share between requests
    token = await computations.claim_work(protocol, owner="mill-7")
    token = await computations.advance_stage(token, next_stage, after_transition=...)

and depends only on the Protocols of `cmms.duchy.db.interfaces`.

Every mutation returns the new token; continue with it (the old one is stale). Errors are the
classes of `cmms.duchy.db.errors`, each naming the gRPC status to answer with.
"""

from __future__ import annotations

from cmms.duchy.db.backends import DuchyDatabase, open_duchy_database, upgrade_duchy_database
from cmms.duchy.db.computations import DEFAULT_LOCK_DURATION, ComputationsRepository
from cmms.duchy.db.continuation_tokens import ContinuationTokensRepository
from cmms.duchy.db.engine import create_database_engine
from cmms.duchy.db.interfaces import (
    ComputationsRepositoryInterface,
    ComputationStatsRepositoryInterface,
    ContinuationTokensRepositoryInterface,
)
from cmms.duchy.db.migrate import upgrade, upgrade_engine
from cmms.duchy.db.records import (
    AttemptEndReason,
    BlobDependency,
    BlobRef,
    CompletedReason,
    ComputationToken,
    DeletedComputation,
    NewRequisition,
    PurgeResult,
    RequisitionKey,
    RequisitionRecord,
    StageAttempt,
    StageKey,
    StageRecord,
)
from cmms.duchy.db.stats import ComputationStatsRepository

__all__ = [
    "DEFAULT_LOCK_DURATION",
    "AttemptEndReason",
    "BlobDependency",
    "BlobRef",
    "CompletedReason",
    "ComputationStatsRepository",
    "ComputationStatsRepositoryInterface",
    "ComputationToken",
    "ComputationsRepository",
    "ComputationsRepositoryInterface",
    "ContinuationTokensRepository",
    "ContinuationTokensRepositoryInterface",
    "DeletedComputation",
    "DuchyDatabase",
    "NewRequisition",
    "PurgeResult",
    "RequisitionKey",
    "RequisitionRecord",
    "StageAttempt",
    "StageKey",
    "StageRecord",
    "create_database_engine",
    "open_duchy_database",
    "upgrade",
    "upgrade_duchy_database",
    "upgrade_engine",
]
