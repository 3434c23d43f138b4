"""The duchies' view of measurements on Spanner: get, the active-computations stream, results.

The stream reads in (update time, computation id) order; update times are unique and strictly
increasing in commit order (see `store`), so resuming strictly after a token misses nothing.
"""

from __future__ import annotations

from typing import Any

from cmms.kingdom.db.computations import ComputationResult, StreamPosition
from cmms.kingdom.db.records import (
    STREAMED_MEASUREMENT_STATES,
    MeasurementRecord,
    MeasurementSnapshot,
    MeasurementState,
)
from cmms.kingdom.db.spanner import reads
from cmms.kingdom.db.spanner.rows import select_rows
from cmms.kingdom.db.spanner.schema import STREAM_INDEX
from cmms.kingdom.db.spanner.store import SpannerKingdomStore, SpannerWriteTx
from cmms.kingdom.db.spanner.transitions import set_measurement_state
from cmms.kingdom.errors import failed_precondition, not_found, permission_denied
from cmms.kingdom.names import OwnerKind


class SpannerComputationRepository:
    def __init__(self, store: SpannerKingdomStore) -> None:
        self._store = store

    async def get(self, computation_id: int) -> MeasurementSnapshot:
        def query(snapshot: Any) -> MeasurementSnapshot:
            measurement = reads.measurement_by_computation(snapshot, computation_id)
            if measurement is None:
                raise not_found("computation not found")
            return reads.snapshot(snapshot, measurement)

        return await self._store.read(query)

    async def active_after(
        self, duchy_id: str, after: StreamPosition | None, limit: int
    ) -> list[MeasurementSnapshot]:
        """The caller's computations in a streamed state, strictly after `after`, in order."""
        conditions = [
            "computation_id IS NOT NULL",
            "measurement_id IN (SELECT p.measurement_id FROM computation_participants AS p"
            " WHERE p.duchy_id = @duchy)",
            "state IN UNNEST(@states)",
        ]
        params: dict[str, Any] = {
            "duchy": duchy_id,
            "states": sorted(s.value for s in STREAMED_MEASUREMENT_STATES),
        }
        if after is not None:
            conditions.append(
                "(update_time_us > @after_time"
                " OR (update_time_us = @after_time AND computation_id > @after_id))"
            )
            params["after_time"] = after.update_time_us
            params["after_id"] = after.computation_id

        def query(snapshot: Any) -> list[MeasurementSnapshot]:
            rows = select_rows(
                snapshot,
                "measurements",
                " AND ".join(conditions),
                source=f"measurements@{{FORCE_INDEX={STREAM_INDEX}}}",
                order_by="update_time_us, computation_id",
                limit=limit,
                **params,
            )
            records = [MeasurementRecord.from_mapping(r) for r in rows]
            return reads.snapshots(snapshot, records)

        return await self._store.read(query)

    async def set_result(
        self, duchy_id: str, computation_id: int, result: ComputationResult
    ) -> MeasurementSnapshot:
        """PENDING_COMPUTATION -> SUCCEEDED by the configured aggregator; identical retry is OK."""

        def work(tx: SpannerWriteTx) -> int:
            measurement = reads.measurement_by_computation(tx.transaction, computation_id)
            if measurement is None:
                raise not_found("computation not found")
            certificate = reads.certificate(tx.transaction, result.certificate.certificate_id)
            if (
                certificate is None
                or certificate.owner_kind != OwnerKind.DUCHY.value
                or certificate.owner_id != duchy_id
            ):
                raise not_found(f"certificate {result.certificate.name} not found")
            if measurement.aggregator_duchy_id != duchy_id:
                raise permission_denied(
                    f"only the aggregator {measurement.aggregator_duchy_id} may set the result"
                )
            if measurement.measurement_state is MeasurementState.SUCCEEDED and (
                measurement.result_duchy_id,
                measurement.result_certificate_id,
                measurement.encrypted_result,
                measurement.result_api_version,
            ) == (
                duchy_id,
                certificate.certificate_id,
                result.encrypted_result,
                result.public_api_version,
            ):
                return measurement.measurement_id
            if not certificate.is_valid_at(tx.now_us):
                raise failed_precondition(f"certificate {result.certificate.name} is not valid")
            if measurement.measurement_state is not MeasurementState.PENDING_COMPUTATION:
                raise failed_precondition(
                    f"measurement is {measurement.state}, not PENDING_COMPUTATION"
                )
            set_measurement_state(
                tx,
                measurement,
                MeasurementState.SUCCEEDED,
                result_duchy_id=duchy_id,
                result_certificate_id=certificate.certificate_id,
                encrypted_result=result.encrypted_result,
                result_api_version=result.public_api_version,
            )
            return measurement.measurement_id

        return await self._store.write_then_read(work, reads.snapshot_of)
