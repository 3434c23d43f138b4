"""Initial Kingdom schema: parties, certificates, event groups, measurements, requisitions,
participants, log entries and the Kingdom clock.

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


def upgrade() -> None:
    op.create_table(
        "certificates",
        sa.Column("certificate_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("owner_kind", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Text(), nullable=False),
        sa.Column("subject_key_identifier", sa.LargeBinary(), nullable=False),
        sa.Column("x509_der", sa.LargeBinary(), nullable=False),
        sa.Column("not_valid_before_us", sa.BigInteger(), nullable=False),
        sa.Column("not_valid_after_us", sa.BigInteger(), nullable=False),
        sa.Column("revocation_state", sa.Text(), nullable=False),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.Column("update_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("certificate_id", name=op.f("pk_certificates")),
        sa.UniqueConstraint(
            "subject_key_identifier", name=op.f("uq_certificates_subject_key_identifier")
        ),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificates_owner_kind_owner_id"),
            ["owner_kind", "owner_id"],
            unique=False,
        )

    op.create_table(
        "data_providers",
        sa.Column("data_provider_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=True),
        sa.Column("certificate_id", sa.BigInteger(), nullable=True),
        sa.Column("required_duchies", sa.Text(), nullable=False),
        sa.Column("hmss_supported", sa.Boolean(), nullable=False),
        sa.Column("trustee_supported", sa.Boolean(), nullable=False),
        sa.Column("noise_none_supported", sa.Boolean(), nullable=False),
        sa.Column("noise_dtl_supported", sa.Boolean(), nullable=False),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.Column("update_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("data_provider_id", name=op.f("pk_data_providers")),
    )
    op.create_table(
        "duchies",
        sa.Column("duchy_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active_start_time_us", sa.BigInteger(), nullable=False),
        sa.Column("active_end_time_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("duchy_id", name=op.f("pk_duchies")),
    )
    op.create_table(
        "event_groups",
        sa.Column("event_group_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("data_provider_id", sa.Text(), nullable=False),
        sa.Column("measurement_consumer_id", sa.Text(), nullable=False),
        sa.Column("event_group_reference_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("media_types", sa.Text(), nullable=False),
        sa.Column("data_availability_start_us", sa.BigInteger(), nullable=True),
        sa.Column("data_availability_end_us", sa.BigInteger(), nullable=True),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_group_id", name=op.f("pk_event_groups")),
        sa.UniqueConstraint(
            "data_provider_id",
            "request_id",
            name=op.f("uq_event_groups_data_provider_id_request_id"),
        ),
    )
    with op.batch_alter_table("event_groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_event_groups_measurement_consumer_id"),
            ["measurement_consumer_id"],
            unique=False,
        )

    op.create_table(
        "kingdom_clock",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kingdom_clock")),
    )
    op.create_table(
        "measurement_consumers",
        sa.Column("measurement_consumer_id", sa.Text(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=True),
        sa.Column("certificate_id", sa.BigInteger(), nullable=True),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.Column("update_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("measurement_consumer_id", name=op.f("pk_measurement_consumers")),
    )
    op.create_table(
        "measurements",
        sa.Column("measurement_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("measurement_consumer_id", sa.Text(), nullable=False),
        sa.Column("computation_id", sa.BigInteger(), nullable=True),
        sa.Column("measurement_consumer_certificate_id", sa.BigInteger(), nullable=False),
        sa.Column("measurement_reference_id", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=True),
        sa.Column("api_version", sa.Text(), nullable=False),
        sa.Column("measurement_spec", sa.LargeBinary(), nullable=False),
        sa.Column("measurement_spec_signature", sa.LargeBinary(), nullable=False),
        sa.Column("measurement_spec_signature_algorithm_oid", sa.Text(), nullable=False),
        sa.Column("protocol", sa.Text(), nullable=False),
        sa.Column("protocol_config", sa.LargeBinary(), nullable=False),
        sa.Column("duchy_protocol_config", sa.LargeBinary(), nullable=True),
        sa.Column("aggregator_duchy_id", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("result_duchy_id", sa.Text(), nullable=True),
        sa.Column("result_certificate_id", sa.BigInteger(), nullable=True),
        sa.Column("encrypted_result", sa.LargeBinary(), nullable=True),
        sa.Column("result_api_version", sa.Text(), nullable=True),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.Column("update_time_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("measurement_id", name=op.f("pk_measurements")),
        sa.UniqueConstraint("computation_id", name=op.f("uq_measurements_computation_id")),
        sa.UniqueConstraint(
            "measurement_consumer_id",
            "request_id",
            name=op.f("uq_measurements_measurement_consumer_id_request_id"),
        ),
    )
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_measurements_state_create_time_us"),
            ["state", "create_time_us"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_measurements_update_time_us_computation_id"),
            ["update_time_us", "computation_id"],
            unique=False,
        )

    op.create_table(
        "computation_participants",
        sa.Column("measurement_id", sa.BigInteger(), nullable=False),
        sa.Column("duchy_id", sa.Text(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("duchy_certificate_id", sa.BigInteger(), nullable=True),
        sa.Column("requisition_params", sa.LargeBinary(), nullable=True),
        sa.Column("failure_child_reference_id", sa.Text(), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("failure_time_us", sa.BigInteger(), nullable=True),
        sa.Column("failure_stage_attempt", sa.LargeBinary(), nullable=True),
        sa.Column("update_time_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["measurement_id"],
            ["measurements.measurement_id"],
            name=op.f("fk_computation_participants_measurement_id_measurements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "measurement_id", "duchy_id", name=op.f("pk_computation_participants")
        ),
    )
    op.create_table(
        "log_entries",
        sa.Column("log_entry_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("measurement_id", sa.BigInteger(), nullable=False),
        sa.Column("duchy_id", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("participant_child_reference_id", sa.Text(), nullable=True),
        sa.Column("stage_attempt", sa.LargeBinary(), nullable=True),
        sa.Column("error_type", sa.Text(), nullable=True),
        sa.Column("error_time_us", sa.BigInteger(), nullable=True),
        sa.Column("create_time_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["measurement_id"],
            ["measurements.measurement_id"],
            name=op.f("fk_log_entries_measurement_id_measurements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("log_entry_id", name=op.f("pk_log_entries")),
    )
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_log_entries_measurement_id"), ["measurement_id"], unique=False
        )

    op.create_table(
        "requisitions",
        sa.Column("requisition_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("measurement_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("data_provider_id", sa.Text(), nullable=False),
        sa.Column("data_provider_certificate_id", sa.BigInteger(), nullable=False),
        sa.Column("data_provider_public_key", sa.LargeBinary(), nullable=False),
        sa.Column("encrypted_requisition_spec", sa.LargeBinary(), nullable=False),
        sa.Column("nonce_hash", sa.LargeBinary(), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("fulfilling_duchy_id", sa.Text(), nullable=True),
        sa.Column("refusal_justification", sa.Text(), nullable=True),
        sa.Column("refusal_message", sa.Text(), nullable=True),
        sa.Column("fulfillment_context", sa.LargeBinary(), nullable=True),
        sa.Column("direct_encrypted_result", sa.LargeBinary(), nullable=True),
        sa.Column("direct_result_certificate_id", sa.BigInteger(), nullable=True),
        sa.Column("update_time_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["measurement_id"],
            ["measurements.measurement_id"],
            name=op.f("fk_requisitions_measurement_id_measurements"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("requisition_id", name=op.f("pk_requisitions")),
    )
    with op.batch_alter_table("requisitions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_requisitions_data_provider_id_state"),
            ["data_provider_id", "state"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_requisitions_measurement_id"), ["measurement_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("requisitions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_requisitions_measurement_id"))
        batch_op.drop_index(batch_op.f("ix_requisitions_data_provider_id_state"))

    op.drop_table("requisitions")
    with op.batch_alter_table("log_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_log_entries_measurement_id"))

    op.drop_table("log_entries")
    op.drop_table("computation_participants")
    with op.batch_alter_table("measurements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_measurements_update_time_us_computation_id"))
        batch_op.drop_index(batch_op.f("ix_measurements_state_create_time_us"))

    op.drop_table("measurements")
    op.drop_table("measurement_consumers")
    op.drop_table("kingdom_clock")
    with op.batch_alter_table("event_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_groups_measurement_consumer_id"))

    op.drop_table("event_groups")
    op.drop_table("duchies")
    op.drop_table("data_providers")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_owner_kind_owner_id"))

    op.drop_table("certificates")
