"""Queries shared by the repositories, each on an open connection (inside their transaction)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cmms.kingdom.db.records import (
    CertificateRecord,
    DataProviderRecord,
    MeasurementConsumerRecord,
    MeasurementRecord,
    MeasurementSnapshot,
    ParticipantRecord,
    RequisitionRecord,
)
from cmms.kingdom.db.schema import (
    certificates,
    computation_participants,
    data_providers,
    measurement_consumers,
    measurements,
    requisitions,
)


async def certificate(connection: AsyncConnection, certificate_id: int) -> CertificateRecord | None:
    row = (
        await connection.execute(
            select(certificates).where(certificates.c.certificate_id == certificate_id)
        )
    ).first()
    return None if row is None else CertificateRecord.of(row)


async def certificates_by_id(
    connection: AsyncConnection, ids: Iterable[int | None]
) -> dict[int, CertificateRecord]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await connection.execute(
        select(certificates).where(certificates.c.certificate_id.in_(wanted))
    )
    return {r.certificate_id: r for r in map(CertificateRecord.of, rows)}


async def measurement_consumer(
    connection: AsyncConnection, mc_id: str
) -> MeasurementConsumerRecord | None:
    row = (
        await connection.execute(
            select(measurement_consumers).where(
                measurement_consumers.c.measurement_consumer_id == mc_id
            )
        )
    ).first()
    return None if row is None else MeasurementConsumerRecord.of(row)


async def data_provider(connection: AsyncConnection, dp_id: str) -> DataProviderRecord | None:
    row = (
        await connection.execute(
            select(data_providers).where(data_providers.c.data_provider_id == dp_id)
        )
    ).first()
    return None if row is None else DataProviderRecord.of(row)


async def measurement(connection: AsyncConnection, measurement_id: int) -> MeasurementRecord | None:
    row = (
        await connection.execute(
            select(measurements).where(measurements.c.measurement_id == measurement_id)
        )
    ).first()
    return None if row is None else MeasurementRecord.of(row)


async def measurement_by_computation(
    connection: AsyncConnection, computation_id: int
) -> MeasurementRecord | None:
    row = (
        await connection.execute(
            select(measurements).where(measurements.c.computation_id == computation_id)
        )
    ).first()
    return None if row is None else MeasurementRecord.of(row)


async def requisition(connection: AsyncConnection, requisition_id: int) -> RequisitionRecord | None:
    row = (
        await connection.execute(
            select(requisitions).where(requisitions.c.requisition_id == requisition_id)
        )
    ).first()
    return None if row is None else RequisitionRecord.of(row)


async def snapshot(connection: AsyncConnection, record: MeasurementRecord) -> MeasurementSnapshot:
    """`record` with its requisitions, participants and every certificate they reference."""
    requisition_rows = await connection.execute(
        select(requisitions)
        .where(requisitions.c.measurement_id == record.measurement_id)
        .order_by(requisitions.c.position)
    )
    reqs = tuple(map(RequisitionRecord.of, requisition_rows))
    participant_rows = await connection.execute(
        select(computation_participants)
        .where(computation_participants.c.measurement_id == record.measurement_id)
        .order_by(computation_participants.c.position)
    )
    parts = tuple(map(ParticipantRecord.of, participant_rows))
    certificate_ids = [record.measurement_consumer_certificate_id, record.result_certificate_id]
    certificate_ids += [r.data_provider_certificate_id for r in reqs]
    certificate_ids += [r.direct_result_certificate_id for r in reqs]
    certificate_ids += [p.duchy_certificate_id for p in parts]
    certs = await certificates_by_id(connection, certificate_ids)
    return MeasurementSnapshot(record, reqs, parts, certs)
