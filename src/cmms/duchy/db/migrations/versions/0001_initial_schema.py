"""Initial duchy schema: computations, stages, attempts, blobs, requisitions, stats, herald token.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "computations",
        sa.Column("computation_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("protocol", sa.Integer(), nullable=False),
        sa.Column("computation_stage", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("global_computation_id", sa.Text(), nullable=False),
        sa.Column("lock_owner", sa.Text(), nullable=True),
        _timestamp("lock_expiration_time", nullable=True),
        sa.Column("computation_details", sa.LargeBinary(), nullable=False),
        sa.Column("computation_details_json", sa.Text(), nullable=True),
        _timestamp("creation_time", nullable=False),
        _timestamp("update_time", nullable=False),
        sa.CheckConstraint("computation_id <> 0", name="ck_computations_nonzero_id"),
        sa.PrimaryKeyConstraint("computation_id", name="pk_computations"),
        sa.UniqueConstraint("global_computation_id", name="uq_computations_global_id"),
    )
    op.create_index(
        "ix_computations_claim_queue",
        "computations",
        ["protocol", "lock_expiration_time", "creation_time"],
        postgresql_where=sa.text("lock_expiration_time IS NOT NULL"),
        sqlite_where=sa.text("lock_expiration_time IS NOT NULL"),
    )
    op.create_table(
        "computation_stages",
        sa.Column("computation_id", sa.BigInteger(), nullable=False),
        sa.Column("computation_stage", sa.Integer(), nullable=False),
        _timestamp("creation_time", nullable=False),
        sa.Column("next_attempt", sa.BigInteger(), nullable=False),
        _timestamp("end_time", nullable=True),
        sa.Column("previous_stage", sa.Integer(), nullable=True),
        sa.Column("following_stage", sa.Integer(), nullable=True),
        sa.Column("details", sa.LargeBinary(), nullable=False),
        sa.Column("details_json", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["computation_id"],
            ["computations.computation_id"],
            name="fk_stages_computation",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "computation_id", "computation_stage", name="pk_computation_stages"
        ),
    )
    op.create_table(
        "computation_stage_attempts",
        sa.Column("computation_id", sa.BigInteger(), nullable=False),
        sa.Column("computation_stage", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.BigInteger(), nullable=False),
        _timestamp("begin_time", nullable=False),
        _timestamp("end_time", nullable=True),
        sa.Column("reason_ended", sa.Integer(), nullable=True),
        sa.Column("details", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["computation_id", "computation_stage"],
            ["computation_stages.computation_id", "computation_stages.computation_stage"],
            name="fk_attempts_stage",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "computation_id", "computation_stage", "attempt", name="pk_computation_stage_attempts"
        ),
    )
    op.create_table(
        "computation_blob_references",
        sa.Column("computation_id", sa.BigInteger(), nullable=False),
        sa.Column("computation_stage", sa.Integer(), nullable=False),
        sa.Column("blob_id", sa.BigInteger(), nullable=False),
        sa.Column("path_to_blob", sa.Text(), nullable=True),
        sa.Column("dependency_type", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["computation_id", "computation_stage"],
            ["computation_stages.computation_id", "computation_stages.computation_stage"],
            name="fk_blob_references_stage",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "computation_id", "computation_stage", "blob_id", name="pk_computation_blob_references"
        ),
    )
    op.create_table(
        "requisitions",
        sa.Column("computation_id", sa.BigInteger(), nullable=False),
        sa.Column("requisition_id", sa.BigInteger(), nullable=False),
        sa.Column("external_requisition_id", sa.Text(), nullable=False),
        sa.Column("requisition_fingerprint", sa.LargeBinary(), nullable=False),
        sa.Column("path_to_blob", sa.Text(), nullable=True),
        sa.Column("requisition_details", sa.LargeBinary(), nullable=False),
        sa.Column("requisition_details_json", sa.Text(), nullable=True),
        _timestamp("creation_time", nullable=False),
        _timestamp("update_time", nullable=False),
        sa.ForeignKeyConstraint(
            ["computation_id"],
            ["computations.computation_id"],
            name="fk_requisitions_computation",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("computation_id", "requisition_id", name="pk_requisitions"),
        sa.UniqueConstraint(
            "external_requisition_id",
            "requisition_fingerprint",
            name="uq_requisitions_external_key",
        ),
    )
    op.create_table(
        "computation_stats",
        sa.Column("computation_id", sa.BigInteger(), nullable=False),
        sa.Column("computation_stage", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.BigInteger(), nullable=False),
        sa.Column("metric_name", sa.Text(), nullable=False),
        _timestamp("creation_time", nullable=False),
        sa.Column("metric_value", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["computation_id", "computation_stage", "attempt"],
            [
                "computation_stage_attempts.computation_id",
                "computation_stage_attempts.computation_stage",
                "computation_stage_attempts.attempt",
            ],
            name="fk_stats_attempt",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "computation_id",
            "computation_stage",
            "attempt",
            "metric_name",
            name="pk_computation_stats",
        ),
    )
    op.create_table(
        "herald_continuation_tokens",
        sa.Column("presence", sa.Boolean(), nullable=False),
        sa.Column("continuation_token", sa.Text(), nullable=False),
        _timestamp("last_seen_update_time", nullable=False),
        _timestamp("update_time", nullable=False),
        sa.CheckConstraint("presence", name="ck_herald_continuation_tokens_single_row"),
        sa.PrimaryKeyConstraint("presence", name="pk_herald_continuation_tokens"),
    )


def downgrade() -> None:
    op.drop_table("herald_continuation_tokens")
    op.drop_table("computation_stats")
    op.drop_table("requisitions")
    op.drop_table("computation_blob_references")
    op.drop_table("computation_stage_attempts")
    op.drop_table("computation_stages")
    op.drop_index("ix_computations_claim_queue", table_name="computations")
    op.drop_table("computations")
