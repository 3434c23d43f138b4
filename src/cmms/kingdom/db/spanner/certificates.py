"""Certificates on Spanner: the rules of `cmms.kingdom.db.certificates`, as mutations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cmms.kingdom.db.certificates import ParsedCertificate, parse_certificate_der
from cmms.kingdom.db.records import (
    OPEN_REQUISITION_STATES,
    PENDING_MEASUREMENT_STATES,
    CertificateRecord,
    FailureReason,
    MeasurementRecord,
    MeasurementState,
    ParticipantState,
    RevocationState,
)
from cmms.kingdom.db.spanner import reads
from cmms.kingdom.db.spanner.rows import insert, select_rows, update
from cmms.kingdom.db.spanner.store import SpannerKingdomStore, SpannerWriteTx
from cmms.kingdom.db.spanner.transitions import end_measurement
from cmms.kingdom.errors import already_exists, failed_precondition, invalid_argument, not_found
from cmms.kingdom.names import CertificateKey, Owner, OwnerKind

_OWNED = "certificate_id = @id AND owner_kind = @kind AND owner_id = @owner"


class SpannerCertificateRepository:
    def __init__(self, store: SpannerKingdomStore) -> None:
        self._store = store

    async def create(self, owner: Owner, der: bytes) -> CertificateRecord:
        """Register a certificate; ALREADY_EXISTS if its SKID is taken."""
        parsed = parse_certificate_der(der)

        def work(tx: SpannerWriteTx) -> int:
            if _by_subject_key_identifier(tx.transaction, parsed.subject_key_identifier):
                raise already_exists("a certificate with this subject key identifier exists")
            return insert_certificate(tx, owner, parsed)

        return await self._store.write_then_read(work, _certificate)

    async def ensure(self, owner: Owner, der: bytes) -> CertificateRecord:
        """Idempotent registration (seeding): the same certificate of the same owner is reused."""
        parsed = parse_certificate_der(der)

        def work(tx: SpannerWriteTx) -> int:
            found = _by_subject_key_identifier(tx.transaction, parsed.subject_key_identifier)
            if not found:
                return insert_certificate(tx, owner, parsed)
            record = found[0]
            if (record.owner_kind, record.owner_id, record.x509_der) != (
                owner.kind.value,
                owner.id,
                der,
            ):
                raise already_exists("the subject key identifier belongs to another certificate")
            return record.certificate_id

        return await self._store.write_then_read(work, _certificate)

    async def get(self, key: CertificateKey) -> CertificateRecord:
        return await self._store.read(lambda snapshot: _owned(snapshot, key))

    async def find(self, certificate_id: int) -> CertificateRecord | None:
        """Any owner's certificate by id (what a party's resource shows), or None."""
        return await self._store.read(lambda snapshot: reads.certificate(snapshot, certificate_id))

    async def list_owned(
        self, owner: Owner, subject_key_identifiers: Sequence[bytes] = ()
    ) -> list[CertificateRecord]:
        def query(snapshot: Any) -> list[CertificateRecord]:
            rows = select_rows(
                snapshot,
                "certificates",
                "owner_kind = @kind AND owner_id = @owner",
                order_by="create_time_us, certificate_id",
                kind=owner.kind.value,
                owner=owner.id,
            )
            return [CertificateRecord.from_mapping(r) for r in rows]

        owned = await self._store.read(query)
        # An owner has a handful of certificates: filtering here spares a BYTES array parameter.
        if subject_key_identifiers:
            wanted = set(subject_key_identifiers)
            owned = [c for c in owned if c.subject_key_identifier in wanted]
        return owned

    async def revoke(self, key: CertificateKey, target: RevocationState) -> CertificateRecord:
        """Unset -> HOLD/REVOKED, HOLD -> REVOKED; fails affected pending measurements (§1.3)."""
        if target is RevocationState.NONE:
            raise invalid_argument("revocation_state must be HOLD or REVOKED")

        def work(tx: SpannerWriteTx) -> int:
            record = _owned(tx.transaction, key)
            current = RevocationState(record.revocation_state)
            if current is RevocationState.REVOKED and target is RevocationState.HOLD:
                raise failed_precondition("a revoked certificate cannot be put on hold")
            if current is not target:
                _set_revocation(tx, record, target)
                _fail_affected_measurements(tx, key)
            return record.certificate_id

        return await self._store.write_then_read(work, _certificate)

    async def release_hold(self, key: CertificateKey) -> CertificateRecord:
        def work(tx: SpannerWriteTx) -> int:
            record = _owned(tx.transaction, key)
            if record.revocation_state != RevocationState.HOLD:
                raise failed_precondition("the certificate is not on hold")
            _set_revocation(tx, record, RevocationState.NONE)
            return record.certificate_id

        return await self._store.write_then_read(work, _certificate)


def insert_certificate(tx: SpannerWriteTx, owner: Owner, parsed: ParsedCertificate) -> int:
    certificate_id = tx.new_id()
    insert(
        tx,
        "certificates",
        certificate_id=certificate_id,
        owner_kind=owner.kind.value,
        owner_id=owner.id,
        subject_key_identifier=parsed.subject_key_identifier,
        x509_der=parsed.der,
        not_valid_before_us=parsed.not_valid_before_us,
        not_valid_after_us=parsed.not_valid_after_us,
        revocation_state=RevocationState.NONE.value,
        create_time_us=tx.now_us,
        update_time_us=tx.now_us,
    )
    return certificate_id


def _certificate(reader: Any, certificate_id: int) -> CertificateRecord:
    record = reads.certificate(reader, certificate_id)
    assert record is not None, certificate_id
    return record


def _by_subject_key_identifier(reader: Any, skid: bytes) -> list[CertificateRecord]:
    rows = select_rows(reader, "certificates", "subject_key_identifier = @skid", skid=skid)
    return [CertificateRecord.from_mapping(r) for r in rows]


def _owned(reader: Any, key: CertificateKey) -> CertificateRecord:
    rows = select_rows(
        reader,
        "certificates",
        _OWNED,
        id=key.certificate_id,
        kind=key.owner.kind.value,
        owner=key.owner.id,
    )
    if not rows:
        raise not_found(f"certificate {key.name} not found")
    return CertificateRecord.from_mapping(rows[0])


def _set_revocation(tx: SpannerWriteTx, record: CertificateRecord, state: RevocationState) -> None:
    update(
        tx,
        "certificates",
        certificate_id=record.certificate_id,
        revocation_state=state.value,
        update_time_us=tx.now_us,
    )


def _fail_affected_measurements(tx: SpannerWriteTx, key: CertificateKey) -> None:
    """Fail every pending measurement this certificate still matters to (spec §1.3)."""
    params: dict[str, Any] = {"certificate": key.certificate_id}
    if key.owner.kind is OwnerKind.MEASUREMENT_CONSUMER:
        condition = "measurement_consumer_certificate_id = @certificate"
    elif key.owner.kind is OwnerKind.DATA_PROVIDER:
        condition = (
            "EXISTS (SELECT 1 FROM requisitions AS r"
            " WHERE r.measurement_id = measurements.measurement_id"
            " AND r.data_provider_certificate_id = @certificate"
            " AND r.state IN UNNEST(@open_requisition))"
        )
        params["open_requisition"] = sorted(s.value for s in OPEN_REQUISITION_STATES)
    else:
        condition = (
            "EXISTS (SELECT 1 FROM computation_participants AS p"
            " WHERE p.measurement_id = measurements.measurement_id"
            " AND p.duchy_certificate_id = @certificate AND p.state = @params_set)"
        )
        params["params_set"] = ParticipantState.REQUISITION_PARAMS_SET.value
    rows = select_rows(
        tx.transaction,
        "measurements",
        f"state IN UNNEST(@pending) AND {condition}",
        pending=sorted(s.value for s in PENDING_MEASUREMENT_STATES),
        **params,
    )
    for record in map(MeasurementRecord.from_mapping, rows):
        end_measurement(
            tx,
            record,
            MeasurementState.FAILED,
            FailureReason.CERTIFICATE_REVOKED,
            f"certificate {key.name} was revoked or put on hold",
        )
