"""Queries shared by the Spanner repositories, on a snapshot or inside a read-write transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cmms.kingdom.db.records import (
    CertificateRecord,
    DataProviderRecord,
    MeasurementConsumerRecord,
    MeasurementRecord,
    MeasurementSnapshot,
    ParticipantRecord,
    RequisitionRecord,
)
from cmms.kingdom.db.spanner.rows import select_one, select_rows
from cmms.kingdom.db.spanner.schema import REQUISITION_ID_INDEX


def certificate(reader: Any, certificate_id: int) -> CertificateRecord | None:
    row = select_one(reader, "certificates", "certificate_id = @id", id=certificate_id)
    return None if row is None else CertificateRecord.from_mapping(row)


def certificates_by_id(reader: Any, ids: Iterable[int | None]) -> dict[int, CertificateRecord]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = select_rows(reader, "certificates", "certificate_id IN UNNEST(@ids)", ids=wanted)
    return {r.certificate_id: r for r in map(CertificateRecord.from_mapping, rows)}


def measurement_consumer(reader: Any, mc_id: str) -> MeasurementConsumerRecord | None:
    row = select_one(reader, "measurement_consumers", "measurement_consumer_id = @id", id=mc_id)
    return None if row is None else MeasurementConsumerRecord.from_mapping(row)


def data_provider(reader: Any, dp_id: str) -> DataProviderRecord | None:
    row = select_one(reader, "data_providers", "data_provider_id = @id", id=dp_id)
    return None if row is None else DataProviderRecord.from_mapping(row)


def measurement(reader: Any, measurement_id: int) -> MeasurementRecord | None:
    row = select_one(reader, "measurements", "measurement_id = @id", id=measurement_id)
    return None if row is None else MeasurementRecord.from_mapping(row)


def measurement_by_computation(reader: Any, computation_id: int) -> MeasurementRecord | None:
    row = select_one(reader, "measurements", "computation_id = @id", id=computation_id)
    return None if row is None else MeasurementRecord.from_mapping(row)


def requisition(reader: Any, requisition_id: int) -> RequisitionRecord | None:
    rows = select_rows(
        reader,
        "requisitions",
        "requisition_id = @id",
        source=f"requisitions@{{FORCE_INDEX={REQUISITION_ID_INDEX}}}",
        id=requisition_id,
    )
    return RequisitionRecord.from_mapping(rows[0]) if rows else None


def snapshot(reader: Any, record: MeasurementRecord) -> MeasurementSnapshot:
    """`record` with its requisitions, participants and every certificate they reference."""
    reqs = tuple(
        RequisitionRecord.from_mapping(r)
        for r in select_rows(
            reader,
            "requisitions",
            "measurement_id = @id",
            order_by="position",
            id=record.measurement_id,
        )
    )
    parts = tuple(
        ParticipantRecord.from_mapping(r)
        for r in select_rows(
            reader,
            "computation_participants",
            "measurement_id = @id",
            order_by="position",
            id=record.measurement_id,
        )
    )
    certificate_ids = [record.measurement_consumer_certificate_id, record.result_certificate_id]
    certificate_ids += [r.data_provider_certificate_id for r in reqs]
    certificate_ids += [r.direct_result_certificate_id for r in reqs]
    certificate_ids += [p.duchy_certificate_id for p in parts]
    certs = certificates_by_id(reader, certificate_ids)
    return MeasurementSnapshot(record, reqs, parts, certs)


def snapshot_of(reader: Any, measurement_id: int) -> MeasurementSnapshot:
    """The snapshot of a measurement known to exist (a writer's read-back)."""
    record = measurement(reader, measurement_id)
    assert record is not None, measurement_id
    return snapshot(reader, record)
