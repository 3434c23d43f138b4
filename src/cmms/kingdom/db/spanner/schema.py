"""The Kingdom's Spanner schema, as numbered DDL migrations.

Tables and columns carry the names of the SQL schema (`cmms.kingdom.db.schema`), with the same
types in Spanner terms (BIGINT and INTEGER: INT64, TEXT: STRING(MAX), binary: BYTES(MAX)) and the
same nullability, so one record class reads rows of either backend; a test checks they agree.
Times stay INT64 microseconds: update times come from the Kingdom clock (`max(now, previous +
1 µs)`), not from commit timestamps, because a write needs its time (for etags and log entries)
before it commits. The one commit-timestamp column is the clock row's `commit_time`, the
Spanner-side time of the last write, for operators.

Shaped for Spanner: a measurement's requisitions, participants and log entries are interleaved
in it (their keys start with `measurement_id`), so reading a measurement with its children stays
within one split; where the SQL schema keys a child by its own id alone, a unique index keeps that
lookup. Optional unique keys (`request_id`, `computation_id`) are NULL_FILTERED unique indexes,
which allow any number of NULLs as the SQL unique constraints do.

Statements are idempotent (IF NOT EXISTS) so that a half-applied batch can be re-run. Never edit a
released migration: append a new one.
"""

from __future__ import annotations

from cmms.common.spanner.ddl_migrations import DdlMigration

VERSION_TABLE = "KingdomSchemaMigrations"

REQUISITION_ID_INDEX = "requisitions_by_id"
STREAM_INDEX = "measurements_by_update_time"

_INITIAL = DdlMigration(
    version=1,
    description="initial Kingdom schema",
    statements=(
        # One row (id = 1), read and bumped by every write transaction: it makes all writers
        # conflict, so Spanner serialises them and the clock's order is the commit order.
        """CREATE TABLE IF NOT EXISTS kingdom_clock (
            id INT64 NOT NULL,
            last_time_us INT64 NOT NULL,
            commit_time TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
        ) PRIMARY KEY (id)""",
        """CREATE TABLE IF NOT EXISTS duchies (
            duchy_id STRING(MAX) NOT NULL,
            position INT64 NOT NULL,
            active_start_time_us INT64 NOT NULL,
            active_end_time_us INT64,
        ) PRIMARY KEY (duchy_id)""",
        """CREATE TABLE IF NOT EXISTS measurement_consumers (
            measurement_consumer_id STRING(MAX) NOT NULL,
            display_name STRING(MAX) NOT NULL,
            public_key BYTES(MAX),
            certificate_id INT64,
            create_time_us INT64 NOT NULL,
            update_time_us INT64 NOT NULL,
        ) PRIMARY KEY (measurement_consumer_id)""",
        """CREATE TABLE IF NOT EXISTS data_providers (
            data_provider_id STRING(MAX) NOT NULL,
            display_name STRING(MAX) NOT NULL,
            public_key BYTES(MAX),
            certificate_id INT64,
            required_duchies STRING(MAX) NOT NULL,
            hmss_supported BOOL NOT NULL,
            trustee_supported BOOL NOT NULL,
            noise_none_supported BOOL NOT NULL,
            noise_dtl_supported BOOL NOT NULL,
            create_time_us INT64 NOT NULL,
            update_time_us INT64 NOT NULL,
        ) PRIMARY KEY (data_provider_id)""",
        """CREATE TABLE IF NOT EXISTS certificates (
            certificate_id INT64 NOT NULL,
            owner_kind STRING(MAX) NOT NULL,
            owner_id STRING(MAX) NOT NULL,
            subject_key_identifier BYTES(MAX) NOT NULL,
            x509_der BYTES(MAX) NOT NULL,
            not_valid_before_us INT64 NOT NULL,
            not_valid_after_us INT64 NOT NULL,
            revocation_state STRING(MAX) NOT NULL,
            create_time_us INT64 NOT NULL,
            update_time_us INT64 NOT NULL,
        ) PRIMARY KEY (certificate_id)""",
        """CREATE UNIQUE INDEX IF NOT EXISTS certificates_by_subject_key_identifier
            ON certificates (subject_key_identifier)""",
        """CREATE INDEX IF NOT EXISTS certificates_by_owner
            ON certificates (owner_kind, owner_id)""",
        """CREATE TABLE IF NOT EXISTS event_groups (
            event_group_id INT64 NOT NULL,
            data_provider_id STRING(MAX) NOT NULL,
            measurement_consumer_id STRING(MAX) NOT NULL,
            event_group_reference_id STRING(MAX) NOT NULL,
            display_name STRING(MAX) NOT NULL,
            media_types STRING(MAX) NOT NULL,
            data_availability_start_us INT64,
            data_availability_end_us INT64,
            request_id STRING(MAX),
            create_time_us INT64 NOT NULL,
        ) PRIMARY KEY (event_group_id)""",
        """CREATE UNIQUE NULL_FILTERED INDEX IF NOT EXISTS event_groups_by_request_id
            ON event_groups (data_provider_id, request_id)""",
        """CREATE INDEX IF NOT EXISTS event_groups_by_measurement_consumer
            ON event_groups (measurement_consumer_id)""",
        """CREATE TABLE IF NOT EXISTS measurements (
            measurement_id INT64 NOT NULL,
            measurement_consumer_id STRING(MAX) NOT NULL,
            computation_id INT64,
            measurement_consumer_certificate_id INT64 NOT NULL,
            measurement_reference_id STRING(MAX) NOT NULL,
            request_id STRING(MAX),
            api_version STRING(MAX) NOT NULL,
            measurement_spec BYTES(MAX) NOT NULL,
            measurement_spec_signature BYTES(MAX) NOT NULL,
            measurement_spec_signature_algorithm_oid STRING(MAX) NOT NULL,
            protocol STRING(MAX) NOT NULL,
            protocol_config BYTES(MAX) NOT NULL,
            duchy_protocol_config BYTES(MAX),
            aggregator_duchy_id STRING(MAX),
            state STRING(MAX) NOT NULL,
            failure_reason STRING(MAX),
            failure_message STRING(MAX),
            result_duchy_id STRING(MAX),
            result_certificate_id INT64,
            encrypted_result BYTES(MAX),
            result_api_version STRING(MAX),
            create_time_us INT64 NOT NULL,
            update_time_us INT64 NOT NULL,
        ) PRIMARY KEY (measurement_id)""",
        """CREATE UNIQUE NULL_FILTERED INDEX IF NOT EXISTS measurements_by_computation_id
            ON measurements (computation_id)""",
        """CREATE UNIQUE NULL_FILTERED INDEX IF NOT EXISTS measurements_by_request_id
            ON measurements (measurement_consumer_id, request_id)""",
        """CREATE INDEX IF NOT EXISTS measurements_by_consumer
            ON measurements (measurement_consumer_id, create_time_us, measurement_id)""",
        # The duchies' stream, in (update time, computation id) order.
        f"""CREATE INDEX IF NOT EXISTS {STREAM_INDEX}
            ON measurements (update_time_us, computation_id)""",
        # The TTL job: pending measurements, oldest first.
        """CREATE INDEX IF NOT EXISTS measurements_by_state
            ON measurements (state, create_time_us)""",
        """CREATE TABLE IF NOT EXISTS requisitions (
            measurement_id INT64 NOT NULL,
            requisition_id INT64 NOT NULL,
            position INT64 NOT NULL,
            data_provider_id STRING(MAX) NOT NULL,
            data_provider_certificate_id INT64 NOT NULL,
            data_provider_public_key BYTES(MAX) NOT NULL,
            encrypted_requisition_spec BYTES(MAX) NOT NULL,
            nonce_hash BYTES(MAX) NOT NULL,
            nonce BYTES(MAX),
            state STRING(MAX) NOT NULL,
            fulfilling_duchy_id STRING(MAX),
            refusal_justification STRING(MAX),
            refusal_message STRING(MAX),
            fulfillment_context BYTES(MAX),
            direct_encrypted_result BYTES(MAX),
            direct_result_certificate_id INT64,
            update_time_us INT64 NOT NULL,
        ) PRIMARY KEY (measurement_id, requisition_id),
          INTERLEAVE IN PARENT measurements ON DELETE CASCADE""",
        f"""CREATE UNIQUE INDEX IF NOT EXISTS {REQUISITION_ID_INDEX}
            ON requisitions (requisition_id)""",
        """CREATE INDEX IF NOT EXISTS requisitions_by_data_provider
            ON requisitions (data_provider_id, state)""",
        """CREATE TABLE IF NOT EXISTS computation_participants (
            measurement_id INT64 NOT NULL,
            duchy_id STRING(MAX) NOT NULL,
            position INT64 NOT NULL,
            state STRING(MAX) NOT NULL,
            duchy_certificate_id INT64,
            requisition_params BYTES(MAX),
            failure_child_reference_id STRING(MAX),
            failure_message STRING(MAX),
            failure_time_us INT64,
            failure_stage_attempt BYTES(MAX),
            update_time_us INT64 NOT NULL,
        ) PRIMARY KEY (measurement_id, duchy_id),
          INTERLEAVE IN PARENT measurements ON DELETE CASCADE""",
        """CREATE INDEX IF NOT EXISTS computation_participants_by_duchy
            ON computation_participants (duchy_id)""",
        """CREATE TABLE IF NOT EXISTS log_entries (
            measurement_id INT64 NOT NULL,
            log_entry_id INT64 NOT NULL,
            duchy_id STRING(MAX),
            message STRING(MAX) NOT NULL,
            participant_child_reference_id STRING(MAX),
            stage_attempt BYTES(MAX),
            error_type STRING(MAX),
            error_time_us INT64,
            create_time_us INT64 NOT NULL,
        ) PRIMARY KEY (measurement_id, log_entry_id),
          INTERLEAVE IN PARENT measurements ON DELETE CASCADE""",
    ),
)

MIGRATIONS: tuple[DdlMigration, ...] = (_INITIAL,)
