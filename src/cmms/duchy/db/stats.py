"""`ComputationStatsRepository`: free-form metrics attached to a stage attempt."""

from __future__ import annotations

from sqlalchemy import exists, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from cmms.duchy.db.clock import Clock, system_clock, utc
from cmms.duchy.db.engine import read_connection
from cmms.duchy.db.errors import (
    ComputationStatAlreadyExistsError,
    InvalidArgumentError,
    StageAttemptNotFoundError,
)
from cmms.duchy.db.schema import computation_stage_attempts as attempts_t
from cmms.duchy.db.schema import computation_stats as stats_t


class ComputationStatsRepository:
    def __init__(self, engine: AsyncEngine, *, clock: Clock = system_clock) -> None:
        self._engine = engine
        self._clock = clock

    async def create_computation_stat(
        self,
        local_computation_id: int,
        stage: int,
        attempt: int,
        metric_name: str,
        metric_value: int,
    ) -> None:
        """Record one metric of an attempt. Mills treat every error here as ignorable."""
        if local_computation_id == 0:
            raise InvalidArgumentError("local_computation_id must be set")
        if stage == 0:
            raise InvalidArgumentError("computation_stage must be set")
        if not metric_name:
            raise InvalidArgumentError("metric_name must not be empty")
        try:
            async with self._engine.begin() as connection:
                attempt_exists = (
                    await connection.execute(
                        select(
                            exists().where(
                                attempts_t.c.computation_id == local_computation_id,
                                attempts_t.c.computation_stage == stage,
                                attempts_t.c.attempt == attempt,
                            )
                        )
                    )
                ).scalar()
                if not attempt_exists:
                    raise StageAttemptNotFoundError(
                        f"computation {local_computation_id} has no attempt {attempt} "
                        f"at stage {stage}"
                    )
                await connection.execute(
                    insert(stats_t).values(
                        computation_id=local_computation_id,
                        computation_stage=stage,
                        attempt=attempt,
                        metric_name=metric_name,
                        creation_time=utc(self._clock()),
                        metric_value=metric_value,
                    )
                )
        except IntegrityError as error:
            raise ComputationStatAlreadyExistsError(
                f"metric {metric_name!r} is already recorded for that attempt"
            ) from error

    async def stats(self, local_computation_id: int) -> dict[tuple[int, int, str], int]:
        """Every metric of the computation, keyed by (stage, attempt, name)."""
        async with read_connection(self._engine) as connection:
            rows = await connection.execute(
                select(stats_t).where(stats_t.c.computation_id == local_computation_id)
            )
            return {(r.computation_stage, r.attempt, r.metric_name): r.metric_value for r in rows}
