"""The duchies' view of measurements: get, the active-computations stream, and results."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select

from cmms.kingdom.db import reads
from cmms.kingdom.db.records import (
    STREAMED_MEASUREMENT_STATES,
    MeasurementRecord,
    MeasurementSnapshot,
    MeasurementState,
)
from cmms.kingdom.db.schema import computation_participants, measurements
from cmms.kingdom.db.store import KingdomStore
from cmms.kingdom.db.transitions import set_measurement_state
from cmms.kingdom.errors import failed_precondition, not_found, permission_denied
from cmms.kingdom.names import CertificateKey, OwnerKind


@dataclass(frozen=True, order=True)
class StreamPosition:
    """Where a stream is: the (update time, computation id) of the last computation emitted."""

    update_time_us: int
    computation_id: int


@dataclass(frozen=True)
class ComputationResult:
    certificate: CertificateKey
    encrypted_result: bytes
    public_api_version: str


class ComputationRepository:
    def __init__(self, store: KingdomStore) -> None:
        self._store = store

    async def get(self, computation_id: int) -> MeasurementSnapshot:
        async with self._store.read() as connection:
            measurement = await reads.measurement_by_computation(connection, computation_id)
            if measurement is None:
                raise not_found("computation not found")
            return await reads.snapshot(connection, measurement)

    async def active_after(
        self, duchy_id: str, after: StreamPosition | None, limit: int
    ) -> list[MeasurementSnapshot]:
        """The caller's computations in a streamed state, strictly after `after`, in order."""
        participates = (
            select(computation_participants.c.measurement_id)
            .where(computation_participants.c.duchy_id == duchy_id)
            .scalar_subquery()
        )
        query = select(measurements).where(
            measurements.c.computation_id.is_not(None),
            measurements.c.measurement_id.in_(participates),
            measurements.c.state.in_([s.value for s in STREAMED_MEASUREMENT_STATES]),
        )
        if after is not None:
            query = query.where(
                or_(
                    measurements.c.update_time_us > after.update_time_us,
                    and_(
                        measurements.c.update_time_us == after.update_time_us,
                        measurements.c.computation_id > after.computation_id,
                    ),
                )
            )
        query = query.order_by(measurements.c.update_time_us, measurements.c.computation_id)
        async with self._store.read() as connection:
            rows = await connection.execute(query.limit(limit))
            records = [MeasurementRecord.of(r) for r in rows]
            return [await reads.snapshot(connection, r) for r in records]

    async def set_result(
        self, duchy_id: str, computation_id: int, result: ComputationResult
    ) -> MeasurementSnapshot:
        """PENDING_COMPUTATION -> SUCCEEDED by the configured aggregator; identical retry is OK."""
        async with self._store.write() as tx:
            measurement = await reads.measurement_by_computation(tx.connection, computation_id)
            if measurement is None:
                raise not_found("computation not found")
            certificate = await reads.certificate(tx.connection, result.certificate.certificate_id)
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
                return await reads.snapshot(tx.connection, measurement)
            if not certificate.is_valid_at(tx.now_us):
                raise failed_precondition(f"certificate {result.certificate.name} is not valid")
            if measurement.measurement_state is not MeasurementState.PENDING_COMPUTATION:
                raise failed_precondition(
                    f"measurement is {measurement.state}, not PENDING_COMPUTATION"
                )
            await set_measurement_state(
                tx,
                measurement,
                MeasurementState.SUCCEEDED,
                result_duchy_id=duchy_id,
                result_certificate_id=certificate.certificate_id,
                encrypted_result=result.encrypted_result,
                result_api_version=result.public_api_version,
            )
            updated = await reads.measurement(tx.connection, measurement.measurement_id)
            assert updated is not None
            return await reads.snapshot(tx.connection, updated)
