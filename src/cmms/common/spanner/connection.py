"""Opening a Spanner database from a `SpannerUrl`, on Cloud Spanner or on the emulator.

With `SPANNER_EMULATOR_HOST` set the client uses anonymous credentials (the emulator has no auth)
and `ensure_database` may create the instance too; against Cloud Spanner instances are
infrastructure, created by Terraform or gcloud, never by this code.

On the emulator, read-write transactions and read-only snapshots also use pooled sessions
instead of the SDK's default multiplexed session: the emulator lets a session run one transaction
at a time, so concurrent transactions on one multiplexed session (two multi-use snapshots of
concurrent readers, too) invalidate each other ("Transaction not found", "Invalid transaction
ID") instead of waiting or being aborted and retried.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from cmms.common.spanner.url import SpannerUrl

EMULATOR_HOST_ENV = "SPANNER_EMULATOR_HOST"
# Read by the SDK whenever it picks a session for a read-write transaction, or a read-only one.
MULTIPLEXED_READ_WRITE_ENV = "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS_FOR_RW"
MULTIPLEXED_READ_ONLY_ENV = "GOOGLE_CLOUD_SPANNER_MULTIPLEXED_SESSIONS"
EMULATOR_INSTANCE_CONFIG = "emulator-config"
_ADMIN_TIMEOUT_SECONDS = 300.0


def emulator_host() -> str | None:
    return os.environ.get(EMULATOR_HOST_ENV) or None


@dataclass
class SpannerConnection:
    """A client and one of its databases. The sync SDK objects are thread-safe; `close` ends both."""

    url: SpannerUrl
    client: Any
    database: Any

    def close(self) -> None:
        self.client.close()


def open_spanner(url: SpannerUrl) -> SpannerConnection:
    """A client for `url`'s project and a handle on its database (nothing is created).

    The database keeps the SDK's default session pool, which creates sessions on first use: a
    pool that fills itself eagerly would fail before `ensure_database` could create the database.
    """
    from google.cloud import spanner

    if emulator_host() is not None:
        from google.auth.credentials import AnonymousCredentials

        # The SDK offers no per-client switch; an explicit setting by the operator wins.
        os.environ.setdefault(MULTIPLEXED_READ_WRITE_ENV, "false")
        os.environ.setdefault(MULTIPLEXED_READ_ONLY_ENV, "false")

        anonymous: Any = AnonymousCredentials
        client = spanner.Client(project=url.project, credentials=anonymous())
    else:
        client = spanner.Client(project=url.project)
    untyped_client: Any = client
    database = untyped_client.instance(url.instance).database(url.database)
    return SpannerConnection(url, untyped_client, database)


def ensure_database(connection: SpannerConnection) -> bool:
    """Create the database (and, on the emulator only, its instance) if absent; True if created."""
    from google.api_core.exceptions import AlreadyExists

    instance = connection.client.instance(connection.url.instance)
    if emulator_host() is not None and not instance.exists():
        emulated = connection.client.instance(
            connection.url.instance,
            configuration_name=(
                f"projects/{connection.url.project}/instanceConfigs/{EMULATOR_INSTANCE_CONFIG}"
            ),
            display_name=connection.url.instance,
            node_count=1,
        )
        # Another process may create it first: the outcome we wanted.
        with contextlib.suppress(AlreadyExists):
            emulated.create().result(_ADMIN_TIMEOUT_SECONDS)
    if connection.database.exists():
        return False
    try:
        connection.database.create().result(_ADMIN_TIMEOUT_SECONDS)
    except AlreadyExists:
        return False
    return True
