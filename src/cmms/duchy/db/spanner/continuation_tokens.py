"""`SpannerContinuationTokensRepository`: the Herald's position in the Kingdom's stream."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.cloud import spanner

from cmms.common.spanner.connection import SpannerConnection
from cmms.common.spanner.values import time_out
from cmms.duchy.db.clock import Clock, system_clock, utc
from cmms.duchy.db.errors import ContinuationTokenInvalidError
from cmms.duchy.db.spanner.transactions import SpannerRunner


class SpannerContinuationTokensRepository:
    def __init__(self, connection: SpannerConnection, *, clock: Clock = system_clock) -> None:
        self._spanner = SpannerRunner(connection)
        self._clock = clock

    async def get_continuation_token(self) -> str:
        """The stored token, or "" if none was ever stored."""

        def query(snapshot: Any) -> str:
            rows = list(
                snapshot.execute_sql("SELECT ContinuationToken FROM HeraldContinuationTokens")
            )
            return str(rows[0][0]) if rows else ""

        return await self._spanner.read(query)

    async def set_continuation_token(self, token: str, last_seen_update_time: datetime) -> None:
        """Store `token` unless the stored one has a strictly later `last_seen_update_time`.

        The read and the write share one read-write transaction, so two first-ever writers cannot
        both insert: Spanner aborts one, and its retry sees the other's row.
        """
        seen = utc(last_seen_update_time)

        def store(transaction: Any) -> None:
            rows = list(
                transaction.execute_sql(
                    "SELECT LastSeenUpdateTime FROM HeraldContinuationTokens WHERE Presence"
                )
            )
            if rows:
                stored = time_out(rows[0][0])
                if seen < stored:
                    raise ContinuationTokenInvalidError(
                        f"continuation token at {seen.isoformat()} is older than the stored one "
                        f"at {stored.isoformat()}"
                    )
            transaction.insert_or_update(
                "HeraldContinuationTokens",
                columns=(
                    "Presence",
                    "ContinuationToken",
                    "LastSeenUpdateTime",
                    "UpdateTime",
                    "CommitTime",
                ),
                values=[(True, token, seen, utc(self._clock()), spanner.COMMIT_TIMESTAMP)],
            )

        await self._spanner.write(store)
