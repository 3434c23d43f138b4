"""Tables of the duchy's computations database.

Every child table hangs off `computations` with ON DELETE CASCADE, so deleting a computation row
removes its stages, attempts, blob references, requisitions and stats. `version` is the optimistic
concurrency token: it strictly increases with every change of the computation row, unlike a
millisecond timestamp, which two quick writes can share.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from cmms.duchy.db.types import UtcTimestamp

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

computations = Table(
    "computations",
    metadata,
    Column("computation_id", BigInteger, nullable=False, autoincrement=False),
    Column("protocol", Integer, nullable=False),
    Column("computation_stage", Integer, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("global_computation_id", Text, nullable=False),
    Column("lock_owner", Text, nullable=True),
    Column("lock_expiration_time", UtcTimestamp, nullable=True),
    Column("computation_details", LargeBinary, nullable=False),
    Column("computation_details_json", Text, nullable=True),
    Column("creation_time", UtcTimestamp, nullable=False),
    Column("update_time", UtcTimestamp, nullable=False),
    PrimaryKeyConstraint("computation_id"),
    UniqueConstraint("global_computation_id", name="uq_computations_global_id"),
    CheckConstraint("computation_id <> 0", name="nonzero_id"),
)

# The work queue scan: only queued rows (a non-NULL expiration) are indexed.
Index(
    "ix_computations_claim_queue",
    computations.c.protocol,
    computations.c.lock_expiration_time,
    computations.c.creation_time,
    postgresql_where=text("lock_expiration_time IS NOT NULL"),
    sqlite_where=text("lock_expiration_time IS NOT NULL"),
)

computation_stages = Table(
    "computation_stages",
    metadata,
    Column("computation_id", BigInteger, nullable=False),
    Column("computation_stage", Integer, nullable=False),
    Column("creation_time", UtcTimestamp, nullable=False),
    Column("next_attempt", BigInteger, nullable=False),
    Column("end_time", UtcTimestamp, nullable=True),
    Column("previous_stage", Integer, nullable=True),
    Column("following_stage", Integer, nullable=True),
    Column("details", LargeBinary, nullable=False),
    Column("details_json", Text, nullable=True),
    PrimaryKeyConstraint("computation_id", "computation_stage"),
    ForeignKeyConstraint(
        ["computation_id"],
        ["computations.computation_id"],
        name="fk_stages_computation",
        ondelete="CASCADE",
    ),
)

computation_stage_attempts = Table(
    "computation_stage_attempts",
    metadata,
    Column("computation_id", BigInteger, nullable=False),
    Column("computation_stage", Integer, nullable=False),
    Column("attempt", BigInteger, nullable=False),
    Column("begin_time", UtcTimestamp, nullable=False),
    Column("end_time", UtcTimestamp, nullable=True),
    Column("reason_ended", Integer, nullable=True),
    Column("details", LargeBinary, nullable=True),
    PrimaryKeyConstraint("computation_id", "computation_stage", "attempt"),
    ForeignKeyConstraint(
        ["computation_id", "computation_stage"],
        ["computation_stages.computation_id", "computation_stages.computation_stage"],
        name="fk_attempts_stage",
        ondelete="CASCADE",
    ),
)

computation_blob_references = Table(
    "computation_blob_references",
    metadata,
    Column("computation_id", BigInteger, nullable=False),
    Column("computation_stage", Integer, nullable=False),
    Column("blob_id", BigInteger, nullable=False),
    Column("path_to_blob", Text, nullable=True),
    Column("dependency_type", Integer, nullable=False),
    PrimaryKeyConstraint("computation_id", "computation_stage", "blob_id"),
    ForeignKeyConstraint(
        ["computation_id", "computation_stage"],
        ["computation_stages.computation_id", "computation_stages.computation_stage"],
        name="fk_blob_references_stage",
        ondelete="CASCADE",
    ),
)

requisitions = Table(
    "requisitions",
    metadata,
    Column("computation_id", BigInteger, nullable=False),
    Column("requisition_id", BigInteger, nullable=False),
    Column("external_requisition_id", Text, nullable=False),
    Column("requisition_fingerprint", LargeBinary, nullable=False),
    Column("path_to_blob", Text, nullable=True),
    Column("requisition_details", LargeBinary, nullable=False),
    Column("requisition_details_json", Text, nullable=True),
    Column("creation_time", UtcTimestamp, nullable=False),
    Column("update_time", UtcTimestamp, nullable=False),
    PrimaryKeyConstraint("computation_id", "requisition_id"),
    UniqueConstraint(
        "external_requisition_id", "requisition_fingerprint", name="uq_requisitions_external_key"
    ),
    ForeignKeyConstraint(
        ["computation_id"],
        ["computations.computation_id"],
        name="fk_requisitions_computation",
        ondelete="CASCADE",
    ),
)

computation_stats = Table(
    "computation_stats",
    metadata,
    Column("computation_id", BigInteger, nullable=False),
    Column("computation_stage", Integer, nullable=False),
    Column("attempt", BigInteger, nullable=False),
    Column("metric_name", Text, nullable=False),
    Column("creation_time", UtcTimestamp, nullable=False),
    Column("metric_value", BigInteger, nullable=False),
    PrimaryKeyConstraint("computation_id", "computation_stage", "attempt", "metric_name"),
    ForeignKeyConstraint(
        ["computation_id", "computation_stage", "attempt"],
        [
            "computation_stage_attempts.computation_id",
            "computation_stage_attempts.computation_stage",
            "computation_stage_attempts.attempt",
        ],
        name="fk_stats_attempt",
        ondelete="CASCADE",
    ),
)

# A single row (presence is always true). The decoded time of the token is stored beside it so
# that the monotonicity check needs no knowledge of the token's encoding.
herald_continuation_tokens = Table(
    "herald_continuation_tokens",
    metadata,
    Column("presence", Boolean, nullable=False),
    Column("continuation_token", Text, nullable=False),
    Column("last_seen_update_time", UtcTimestamp, nullable=False),
    Column("update_time", UtcTimestamp, nullable=False),
    PrimaryKeyConstraint("presence"),
    CheckConstraint("presence", name="single_row"),
)
