"""The Kingdom schema (SQLAlchemy Core). Migrations in `migrations/` must create exactly this.

Conventions: external ids are the primary keys (random positive 63-bit integers); every time is
microseconds since the epoch (BIGINT), so ordering is exact on every backend; enums are stored
as their names; signed and encrypted payloads are stored as the exact bytes received.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row (id = 1): the last timestamp handed to a write, so that times stay strictly
# increasing across restarts and clock steps.
kingdom_clock = Table(
    "kingdom_clock",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_time_us", BigInteger, nullable=False),
)

duchies = Table(
    "duchies",
    metadata,
    Column("duchy_id", Text, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("active_start_time_us", BigInteger, nullable=False),
    Column("active_end_time_us", BigInteger, nullable=True),
)

measurement_consumers = Table(
    "measurement_consumers",
    metadata,
    Column("measurement_consumer_id", Text, primary_key=True),
    Column("display_name", Text, nullable=False),
    # Serialized public SignedMessage over an EncryptionPublicKey, as registered.
    Column("public_key", LargeBinary, nullable=True),
    Column("certificate_id", BigInteger, nullable=True),
    Column("create_time_us", BigInteger, nullable=False),
    Column("update_time_us", BigInteger, nullable=False),
)

data_providers = Table(
    "data_providers",
    metadata,
    Column("data_provider_id", Text, primary_key=True),
    Column("display_name", Text, nullable=False),
    Column("public_key", LargeBinary, nullable=True),
    Column("certificate_id", BigInteger, nullable=True),
    # JSON list of duchy ids.
    Column("required_duchies", Text, nullable=False),
    Column("hmss_supported", Boolean, nullable=False),
    Column("trustee_supported", Boolean, nullable=False),
    Column("noise_none_supported", Boolean, nullable=False),
    Column("noise_dtl_supported", Boolean, nullable=False),
    Column("create_time_us", BigInteger, nullable=False),
    Column("update_time_us", BigInteger, nullable=False),
)

certificates = Table(
    "certificates",
    metadata,
    Column("certificate_id", BigInteger, primary_key=True, autoincrement=False),
    Column("owner_kind", Text, nullable=False),
    Column("owner_id", Text, nullable=False),
    Column("subject_key_identifier", LargeBinary, nullable=False, unique=True),
    Column("x509_der", LargeBinary, nullable=False),
    Column("not_valid_before_us", BigInteger, nullable=False),
    Column("not_valid_after_us", BigInteger, nullable=False),
    # NONE, HOLD or REVOKED.
    Column("revocation_state", Text, nullable=False),
    Column("create_time_us", BigInteger, nullable=False),
    Column("update_time_us", BigInteger, nullable=False),
    Index(None, "owner_kind", "owner_id"),
)

event_groups = Table(
    "event_groups",
    metadata,
    Column("event_group_id", BigInteger, primary_key=True, autoincrement=False),
    Column("data_provider_id", Text, nullable=False),
    Column("measurement_consumer_id", Text, nullable=False),
    Column("event_group_reference_id", Text, nullable=False),
    Column("display_name", Text, nullable=False),
    # JSON list of media type names.
    Column("media_types", Text, nullable=False),
    Column("data_availability_start_us", BigInteger, nullable=True),
    Column("data_availability_end_us", BigInteger, nullable=True),
    Column("request_id", Text, nullable=True),
    Column("create_time_us", BigInteger, nullable=False),
    UniqueConstraint("data_provider_id", "request_id"),
    Index(None, "measurement_consumer_id"),
)

measurements = Table(
    "measurements",
    metadata,
    Column("measurement_id", BigInteger, primary_key=True, autoincrement=False),
    Column("measurement_consumer_id", Text, nullable=False),
    # Null for direct measurements.
    Column("computation_id", BigInteger, nullable=True, unique=True),
    Column("measurement_consumer_certificate_id", BigInteger, nullable=False),
    Column("measurement_reference_id", Text, nullable=False),
    Column("request_id", Text, nullable=True),
    Column("api_version", Text, nullable=False),
    # The MeasurementSpec bytes exactly as the MC signed them, with the signature.
    Column("measurement_spec", LargeBinary, nullable=False),
    Column("measurement_spec_signature", LargeBinary, nullable=False),
    Column("measurement_spec_signature_algorithm_oid", Text, nullable=False),
    # LLV2, REACH_ONLY_LLV2, HMSS, TRUSTEE or DIRECT.
    Column("protocol", Text, nullable=False),
    # Serialized public ProtocolConfig and system Computation.MpcProtocolConfig (Kingdom-made).
    Column("protocol_config", LargeBinary, nullable=False),
    Column("duchy_protocol_config", LargeBinary, nullable=True),
    # The duchy allowed to set the result (MPC only).
    Column("aggregator_duchy_id", Text, nullable=True),
    Column("state", Text, nullable=False),
    Column("failure_reason", Text, nullable=True),
    Column("failure_message", Text, nullable=True),
    Column("result_duchy_id", Text, nullable=True),
    Column("result_certificate_id", BigInteger, nullable=True),
    Column("encrypted_result", LargeBinary, nullable=True),
    Column("result_api_version", Text, nullable=True),
    Column("create_time_us", BigInteger, nullable=False),
    Column("update_time_us", BigInteger, nullable=False),
    UniqueConstraint("measurement_consumer_id", "request_id"),
    Index(None, "update_time_us", "computation_id"),
    Index(None, "state", "create_time_us"),
)

requisitions = Table(
    "requisitions",
    metadata,
    Column("requisition_id", BigInteger, primary_key=True, autoincrement=False),
    Column(
        "measurement_id",
        BigInteger,
        ForeignKey("measurements.measurement_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("position", Integer, nullable=False),
    Column("data_provider_id", Text, nullable=False),
    Column("data_provider_certificate_id", BigInteger, nullable=False),
    # Serialized EncryptionPublicKey, the encrypted RequisitionSpec and its nonce hash, verbatim.
    Column("data_provider_public_key", LargeBinary, nullable=False),
    Column("encrypted_requisition_spec", LargeBinary, nullable=False),
    Column("nonce_hash", LargeBinary, nullable=False),
    # 8 big-endian bytes (nonces are unsigned 64-bit), set at fulfilment.
    Column("nonce", LargeBinary, nullable=True),
    # PENDING_PARAMS, UNFULFILLED, FULFILLED, REFUSED or WITHDRAWN.
    Column("state", Text, nullable=False),
    Column("fulfilling_duchy_id", Text, nullable=True),
    Column("refusal_justification", Text, nullable=True),
    Column("refusal_message", Text, nullable=True),
    # Serialized public FulfillmentContext.
    Column("fulfillment_context", LargeBinary, nullable=True),
    Column("direct_encrypted_result", LargeBinary, nullable=True),
    Column("direct_result_certificate_id", BigInteger, nullable=True),
    Column("update_time_us", BigInteger, nullable=False),
    Index(None, "measurement_id"),
    Index(None, "data_provider_id", "state"),
)

computation_participants = Table(
    "computation_participants",
    metadata,
    Column(
        "measurement_id",
        BigInteger,
        ForeignKey("measurements.measurement_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("duchy_id", Text, primary_key=True),
    Column("position", Integer, nullable=False),
    # CREATED, REQUISITION_PARAMS_SET, READY or FAILED.
    Column("state", Text, nullable=False),
    Column("duchy_certificate_id", BigInteger, nullable=True),
    # Serialized system ComputationParticipant.RequisitionParams exactly as the duchy sent them.
    Column("requisition_params", LargeBinary, nullable=True),
    Column("failure_child_reference_id", Text, nullable=True),
    Column("failure_message", Text, nullable=True),
    Column("failure_time_us", BigInteger, nullable=True),
    # Serialized system StageAttempt.
    Column("failure_stage_attempt", LargeBinary, nullable=True),
    Column("update_time_us", BigInteger, nullable=False),
)

log_entries = Table(
    "log_entries",
    metadata,
    Column("log_entry_id", BigInteger, primary_key=True, autoincrement=False),
    Column(
        "measurement_id",
        BigInteger,
        ForeignKey("measurements.measurement_id", ondelete="CASCADE"),
        nullable=False,
    ),
    # Null for the Kingdom's own entries.
    Column("duchy_id", Text, nullable=True),
    Column("message", Text, nullable=False),
    Column("participant_child_reference_id", Text, nullable=True),
    # Serialized system StageAttempt.
    Column("stage_attempt", LargeBinary, nullable=True),
    Column("error_type", Text, nullable=True),
    Column("error_time_us", BigInteger, nullable=True),
    Column("create_time_us", BigInteger, nullable=False),
    Index(None, "measurement_id"),
)
