"""Queries shared by the Spanner repositories, on a snapshot or inside a read-write transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from cmms.kingdom.db.records import (
    CertificateRecord,
    DataProviderRecord,
    MeasurementConsumerRecord,
    MeasurementRecord,
    MeasurementSnapshot,
    ParticipantRecord,
    RequisitionRecord,
)
from cmms.kingdom.db.spanner.rows import Row, select_one, select_rows
from cmms.kingdom.db.spanner.schema import REQUISITION_ID_INDEX

T = TypeVar("T")


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
    return snapshots(reader, [record])[0]


def snapshots(reader: Any, records: Sequence[MeasurementRecord]) -> list[MeasurementSnapshot]:
    """The snapshots of several measurements in four queries, whatever their number (a page of
    the stream or of a listing would otherwise cost four round trips per measurement)."""
    if not records:
        return []
    ids = [r.measurement_id for r in records]
    reqs = _children(reader, "requisitions", ids, RequisitionRecord.from_mapping)
    parts = _children(reader, "computation_participants", ids, ParticipantRecord.from_mapping)
    certificate_ids: list[int | None] = []
    for record in records:
        certificate_ids += [record.measurement_consumer_certificate_id]
        certificate_ids += [record.result_certificate_id]
    for requisition in (r for group in reqs.values() for r in group):
        certificate_ids += [requisition.data_provider_certificate_id]
        certificate_ids += [requisition.direct_result_certificate_id]
    certificate_ids += [p.duchy_certificate_id for group in parts.values() for p in group]
    certs = certificates_by_id(reader, certificate_ids)
    result = []
    for record in records:
        own_reqs = tuple(reqs.get(record.measurement_id, ()))
        own_parts = tuple(parts.get(record.measurement_id, ()))
        wanted = {record.measurement_consumer_certificate_id, record.result_certificate_id}
        wanted |= {r.data_provider_certificate_id for r in own_reqs}
        wanted |= {r.direct_result_certificate_id for r in own_reqs}
        wanted |= {p.duchy_certificate_id for p in own_parts}
        own_certs = {i: c for i, c in certs.items() if i in wanted}
        result.append(MeasurementSnapshot(record, own_reqs, own_parts, own_certs))
    return result


def _children(
    reader: Any, table: str, measurement_ids: list[int], build: Callable[[Row], T]
) -> dict[int, list[T]]:
    """Rows of an interleaved child table by measurement, each list in `position` order."""
    grouped: dict[int, list[T]] = {}
    rows = select_rows(
        reader,
        table,
        "measurement_id IN UNNEST(@ids)",
        order_by="measurement_id, position",
        ids=measurement_ids,
    )
    for row in rows:
        grouped.setdefault(row["measurement_id"], []).append(build(row))
    return grouped


def snapshot_of(reader: Any, measurement_id: int) -> MeasurementSnapshot:
    """The snapshot of a measurement known to exist (a writer's read-back)."""
    record = measurement(reader, measurement_id)
    assert record is not None, measurement_id
    return snapshot(reader, record)
