"""`ContinuationTokensRepository`: the Herald's position in the Kingdom's computation stream.

The token itself is opaque here. The caller decodes it and passes its `last_seen_update_time`
along; the pair is stored together, so the monotonicity check never decodes a stored token and
this module needs no protobuf code.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from cmms.duchy.db.clock import Clock, system_clock, utc
from cmms.duchy.db.engine import read_connection
from cmms.duchy.db.errors import ContinuationTokenInvalidError
from cmms.duchy.db.schema import herald_continuation_tokens as tokens_t

_ROUNDS = 3


class ContinuationTokensRepository:
    def __init__(self, engine: AsyncEngine, *, clock: Clock = system_clock) -> None:
        self._engine = engine
        self._clock = clock

    async def get_continuation_token(self) -> str:
        """The stored token, or "" if none was ever stored."""
        async with read_connection(self._engine) as connection:
            found = (
                await connection.execute(select(tokens_t.c.continuation_token))
            ).scalar_one_or_none()
        return found or ""

    async def set_continuation_token(self, token: str, last_seen_update_time: datetime) -> None:
        """Store `token` unless the stored one has a strictly later `last_seen_update_time`."""
        seen = utc(last_seen_update_time)
        for round_ in range(_ROUNDS):
            try:
                await self._set_once(token, seen)
                return
            except IntegrityError:
                # Two first-ever writers raced on the single row; the next round updates it.
                if round_ == _ROUNDS - 1:
                    raise

    async def _set_once(self, token: str, seen: datetime) -> None:
        async with self._engine.begin() as connection:
            stored = (
                await connection.execute(
                    select(tokens_t.c.last_seen_update_time)
                    .where(tokens_t.c.presence.is_(True))
                    .with_for_update()
                )
            ).scalar_one_or_none()
            now = utc(self._clock())
            if stored is None:
                await connection.execute(
                    insert(tokens_t).values(
                        presence=True,
                        continuation_token=token,
                        last_seen_update_time=seen,
                        update_time=now,
                    )
                )
                return
            if seen < stored:
                raise ContinuationTokenInvalidError(
                    f"continuation token at {seen.isoformat()} is older than the stored one "
                    f"at {stored.isoformat()}"
                )
            await connection.execute(
                update(tokens_t)
                .where(tokens_t.c.presence.is_(True))
                .values(continuation_token=token, last_seen_update_time=seen, update_time=now)
            )
