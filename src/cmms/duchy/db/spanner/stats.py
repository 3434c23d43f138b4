"""`SpannerComputationStatsRepository`: free-form metrics attached to a stage attempt."""

from __future__ import annotations

from typing import Any

from google.api_core.exceptions import AlreadyExists

from cmms.common.spanner.connection import SpannerConnection
from cmms.common.spanner.params import query_params
from cmms.duchy.db.clock import Clock, system_clock, utc
from cmms.duchy.db.errors import (
    ComputationStatAlreadyExistsError,
    InvalidArgumentError,
    StageAttemptNotFoundError,
)
from cmms.duchy.db.spanner.transactions import SpannerRunner


class SpannerComputationStatsRepository:
    def __init__(self, connection: SpannerConnection, *, clock: Clock = system_clock) -> None:
        self._spanner = SpannerRunner(connection)
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

        def insert(transaction: Any) -> None:
            attempt_rows = list(
                transaction.execute_sql(
                    "SELECT 1 FROM ComputationStageAttempts WHERE ComputationId = @id"
                    " AND ComputationStage = @stage AND Attempt = @attempt",
                    **query_params(id=local_computation_id, stage=stage, attempt=attempt),
                )
            )
            if not attempt_rows:
                raise StageAttemptNotFoundError(
                    f"computation {local_computation_id} has no attempt {attempt} at stage {stage}"
                )
            transaction.insert(
                "ComputationStats",
                columns=(
                    "ComputationId",
                    "ComputationStage",
                    "Attempt",
                    "MetricName",
                    "CreationTime",
                    "MetricValue",
                ),
                values=[
                    (
                        local_computation_id,
                        stage,
                        attempt,
                        metric_name,
                        utc(self._clock()),
                        metric_value,
                    )
                ],
            )

        try:
            await self._spanner.write(insert)
        except AlreadyExists as error:
            raise ComputationStatAlreadyExistsError(
                f"metric {metric_name!r} is already recorded for that attempt"
            ) from error

    async def stats(self, local_computation_id: int) -> dict[tuple[int, int, str], int]:
        """Every metric of the computation, keyed by (stage, attempt, name)."""

        def query(snapshot: Any) -> dict[tuple[int, int, str], int]:
            rows = snapshot.execute_sql(
                "SELECT ComputationStage, Attempt, MetricName, MetricValue FROM ComputationStats"
                " WHERE ComputationId = @id",
                **query_params(id=local_computation_id),
            )
            return {(stage, attempt, name): value for stage, attempt, name, value in rows}

        return await self._spanner.read(query)
