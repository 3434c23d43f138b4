"""The duchy's Spanner schema, as numbered DDL migrations.

The same tables as the SQL schema, shaped for Spanner: every child table is interleaved in its
parent with ON DELETE CASCADE, so a computation's rows live together (one split, cheap
transactions) and deleting the computation row deletes the rest. The claim queue is a
NULL_FILTERED index, so computations outside the queue (NULL expiration) take no index space.
`CommitTime` columns hold the commit timestamp of a row's last write: `version` cannot be one
(a mutation needs it before commit), but the commit timestamp lets a writer read back exactly the
state its transaction produced.

Statements are idempotent (IF NOT EXISTS) so that a half-applied batch can be re-run. Never edit
a released migration: append a new one.
"""

from __future__ import annotations

from cmms.common.spanner.ddl_migrations import DdlMigration

VERSION_TABLE = "DuchySchemaMigrations"

CLAIM_QUEUE_INDEX = "ComputationsClaimQueue"
GLOBAL_ID_INDEX = "ComputationsByGlobalId"
REQUISITION_KEY_INDEX = "RequisitionsByExternalKey"

_INITIAL = DdlMigration(
    version=1,
    description="initial duchy schema",
    statements=(
        """CREATE TABLE IF NOT EXISTS Computations (
            ComputationId INT64 NOT NULL,
            Protocol INT64 NOT NULL,
            ComputationStage INT64 NOT NULL,
            Version INT64 NOT NULL,
            GlobalComputationId STRING(MAX) NOT NULL,
            LockOwner STRING(MAX),
            LockExpirationTime TIMESTAMP,
            ComputationDetails BYTES(MAX) NOT NULL,
            ComputationDetailsJson STRING(MAX),
            CreationTime TIMESTAMP NOT NULL,
            UpdateTime TIMESTAMP NOT NULL,
            CommitTime TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
            CONSTRAINT NonzeroComputationId CHECK (ComputationId <> 0),
        ) PRIMARY KEY (ComputationId)""",
        f"""CREATE UNIQUE INDEX IF NOT EXISTS {GLOBAL_ID_INDEX}
            ON Computations (GlobalComputationId)""",
        # The work queue: claimable rows in claim order, with what the claim reads stored beside.
        f"""CREATE NULL_FILTERED INDEX IF NOT EXISTS {CLAIM_QUEUE_INDEX}
            ON Computations (Protocol, LockExpirationTime, CreationTime)
            STORING (ComputationStage, Version, LockOwner)""",
        """CREATE TABLE IF NOT EXISTS ComputationStages (
            ComputationId INT64 NOT NULL,
            ComputationStage INT64 NOT NULL,
            CreationTime TIMESTAMP NOT NULL,
            NextAttempt INT64 NOT NULL,
            EndTime TIMESTAMP,
            PreviousStage INT64,
            FollowingStage INT64,
            Details BYTES(MAX) NOT NULL,
            DetailsJson STRING(MAX),
        ) PRIMARY KEY (ComputationId, ComputationStage),
          INTERLEAVE IN PARENT Computations ON DELETE CASCADE""",
        """CREATE TABLE IF NOT EXISTS ComputationStageAttempts (
            ComputationId INT64 NOT NULL,
            ComputationStage INT64 NOT NULL,
            Attempt INT64 NOT NULL,
            BeginTime TIMESTAMP NOT NULL,
            EndTime TIMESTAMP,
            ReasonEnded INT64,
            Details BYTES(MAX),
        ) PRIMARY KEY (ComputationId, ComputationStage, Attempt),
          INTERLEAVE IN PARENT ComputationStages ON DELETE CASCADE""",
        """CREATE TABLE IF NOT EXISTS ComputationBlobReferences (
            ComputationId INT64 NOT NULL,
            ComputationStage INT64 NOT NULL,
            BlobId INT64 NOT NULL,
            PathToBlob STRING(MAX),
            DependencyType INT64 NOT NULL,
        ) PRIMARY KEY (ComputationId, ComputationStage, BlobId),
          INTERLEAVE IN PARENT ComputationStages ON DELETE CASCADE""",
        """CREATE TABLE IF NOT EXISTS Requisitions (
            ComputationId INT64 NOT NULL,
            RequisitionId INT64 NOT NULL,
            ExternalRequisitionId STRING(MAX) NOT NULL,
            RequisitionFingerprint BYTES(MAX) NOT NULL,
            PathToBlob STRING(MAX),
            RequisitionDetails BYTES(MAX) NOT NULL,
            RequisitionDetailsJson STRING(MAX),
            CreationTime TIMESTAMP NOT NULL,
            UpdateTime TIMESTAMP NOT NULL,
        ) PRIMARY KEY (ComputationId, RequisitionId),
          INTERLEAVE IN PARENT Computations ON DELETE CASCADE""",
        f"""CREATE UNIQUE INDEX IF NOT EXISTS {REQUISITION_KEY_INDEX}
            ON Requisitions (ExternalRequisitionId, RequisitionFingerprint)""",
        """CREATE TABLE IF NOT EXISTS ComputationStats (
            ComputationId INT64 NOT NULL,
            ComputationStage INT64 NOT NULL,
            Attempt INT64 NOT NULL,
            MetricName STRING(MAX) NOT NULL,
            CreationTime TIMESTAMP NOT NULL,
            MetricValue INT64 NOT NULL,
        ) PRIMARY KEY (ComputationId, ComputationStage, Attempt, MetricName),
          INTERLEAVE IN PARENT ComputationStageAttempts ON DELETE CASCADE""",
        # A single row: Presence is always true.
        """CREATE TABLE IF NOT EXISTS HeraldContinuationTokens (
            Presence BOOL NOT NULL,
            ContinuationToken STRING(MAX) NOT NULL,
            LastSeenUpdateTime TIMESTAMP NOT NULL,
            UpdateTime TIMESTAMP NOT NULL,
            CommitTime TIMESTAMP NOT NULL OPTIONS (allow_commit_timestamp = true),
            CONSTRAINT SingleRow CHECK (Presence),
        ) PRIMARY KEY (Presence)""",
    ),
)

MIGRATIONS: tuple[DdlMigration, ...] = (_INITIAL,)
