"""Certificates: registration, reads, and revocation (which fails the measurements it affects)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, select, update

from cmms.common import x509 as x509_utils
from cmms.kingdom.db import reads
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
from cmms.kingdom.db.schema import (
    certificates,
    computation_participants,
    measurements,
    requisitions,
)
from cmms.kingdom.db.store import KingdomStore, WriteTx
from cmms.kingdom.db.transitions import end_measurement
from cmms.kingdom.errors import already_exists, failed_precondition, invalid_argument, not_found
from cmms.kingdom.names import CertificateKey, Owner, OwnerKind
from cmms.kingdom.timestamps import to_micros


@dataclass(frozen=True)
class ParsedCertificate:
    der: bytes
    subject_key_identifier: bytes
    not_valid_before_us: int
    not_valid_after_us: int


def parse_certificate_der(der: bytes) -> ParsedCertificate:
    """SKID and validity window of a DER certificate; INVALID_ARGUMENT if unusable."""
    try:
        certificate = x509_utils.load_der_certificate(der)
        skid = x509_utils.subject_key_identifier(certificate)
    except ValueError as exc:
        raise invalid_argument(f"x509_der is not a usable certificate: {exc}") from exc
    return ParsedCertificate(
        der,
        skid,
        to_micros(certificate.not_valid_before_utc),
        to_micros(certificate.not_valid_after_utc),
    )


def _owned_by(key: CertificateKey) -> ColumnElement[bool]:
    return and_(
        certificates.c.certificate_id == key.certificate_id,
        certificates.c.owner_kind == key.owner.kind.value,
        certificates.c.owner_id == key.owner.id,
    )


class CertificateRepository:
    def __init__(self, store: KingdomStore) -> None:
        self._store = store

    async def create(self, owner: Owner, der: bytes) -> CertificateRecord:
        """Register a certificate; ALREADY_EXISTS if its SKID is taken."""
        parsed = parse_certificate_der(der)
        async with self._store.write() as tx:
            taken = (
                await tx.connection.execute(
                    select(certificates.c.certificate_id).where(
                        certificates.c.subject_key_identifier == parsed.subject_key_identifier
                    )
                )
            ).first()
            if taken is not None:
                raise already_exists("a certificate with this subject key identifier exists")
            return await insert_certificate(tx, owner, parsed)

    async def ensure(self, owner: Owner, der: bytes) -> CertificateRecord:
        """Idempotent registration (seeding): the same certificate of the same owner is reused."""
        parsed = parse_certificate_der(der)
        async with self._store.write() as tx:
            row = (
                await tx.connection.execute(
                    select(certificates).where(
                        certificates.c.subject_key_identifier == parsed.subject_key_identifier
                    )
                )
            ).first()
            if row is None:
                return await insert_certificate(tx, owner, parsed)
            record = CertificateRecord.of(row)
            if (record.owner_kind, record.owner_id, record.x509_der) != (
                owner.kind.value,
                owner.id,
                der,
            ):
                raise already_exists("the subject key identifier belongs to another certificate")
            return record

    async def get(self, key: CertificateKey) -> CertificateRecord:
        async with self._store.read() as connection:
            row = (await connection.execute(select(certificates).where(_owned_by(key)))).first()
        if row is None:
            raise not_found(f"certificate {key.name} not found")
        return CertificateRecord.of(row)

    async def find(self, certificate_id: int) -> CertificateRecord | None:
        """Any owner's certificate by id (what a party's resource shows), or None."""
        async with self._store.read() as connection:
            return await reads.certificate(connection, certificate_id)

    async def list_owned(
        self, owner: Owner, subject_key_identifiers: Sequence[bytes] = ()
    ) -> list[CertificateRecord]:
        query = select(certificates).where(
            certificates.c.owner_kind == owner.kind.value, certificates.c.owner_id == owner.id
        )
        if subject_key_identifiers:
            query = query.where(
                certificates.c.subject_key_identifier.in_(list(subject_key_identifiers))
            )
        async with self._store.read() as connection:
            rows = await connection.execute(query.order_by(certificates.c.create_time_us))
        return [CertificateRecord.of(r) for r in rows]

    async def revoke(self, key: CertificateKey, target: RevocationState) -> CertificateRecord:
        """Unset -> HOLD/REVOKED, HOLD -> REVOKED; fails affected pending measurements (§1.3)."""
        if target is RevocationState.NONE:
            raise invalid_argument("revocation_state must be HOLD or REVOKED")
        async with self._store.write() as tx:
            record = await _locked_certificate(tx, key)
            current = RevocationState(record.revocation_state)
            if current is RevocationState.REVOKED and target is RevocationState.HOLD:
                raise failed_precondition("a revoked certificate cannot be put on hold")
            if current is not target:
                await _set_revocation(tx, record, target)
                await _fail_affected_measurements(tx, key)
            return await _reread(tx, record.certificate_id)

    async def release_hold(self, key: CertificateKey) -> CertificateRecord:
        async with self._store.write() as tx:
            record = await _locked_certificate(tx, key)
            if record.revocation_state != RevocationState.HOLD:
                raise failed_precondition("the certificate is not on hold")
            await _set_revocation(tx, record, RevocationState.NONE)
            return await _reread(tx, record.certificate_id)


async def insert_certificate(
    tx: WriteTx, owner: Owner, parsed: ParsedCertificate
) -> CertificateRecord:
    certificate_id = tx.new_id()
    await tx.connection.execute(
        certificates.insert().values(
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
    )
    return await _reread(tx, certificate_id)


async def _reread(tx: WriteTx, certificate_id: int) -> CertificateRecord:
    record = await reads.certificate(tx.connection, certificate_id)
    assert record is not None
    return record


async def _locked_certificate(tx: WriteTx, key: CertificateKey) -> CertificateRecord:
    row = (await tx.connection.execute(select(certificates).where(_owned_by(key)))).first()
    if row is None:
        raise not_found(f"certificate {key.name} not found")
    return CertificateRecord.of(row)


async def _set_revocation(tx: WriteTx, record: CertificateRecord, state: RevocationState) -> None:
    await tx.connection.execute(
        update(certificates)
        .where(certificates.c.certificate_id == record.certificate_id)
        .values(revocation_state=state.value, update_time_us=tx.now_us)
    )


async def _fail_affected_measurements(tx: WriteTx, key: CertificateKey) -> None:
    """Fail every pending measurement this certificate still matters to (spec §1.3)."""
    pending = measurements.c.state.in_([s.value for s in PENDING_MEASUREMENT_STATES])
    certificate_id = key.certificate_id
    if key.owner.kind is OwnerKind.MEASUREMENT_CONSUMER:
        condition = measurements.c.measurement_consumer_certificate_id == certificate_id
    elif key.owner.kind is OwnerKind.DATA_PROVIDER:
        condition = exists().where(
            and_(
                requisitions.c.measurement_id == measurements.c.measurement_id,
                requisitions.c.data_provider_certificate_id == certificate_id,
                requisitions.c.state.in_([s.value for s in OPEN_REQUISITION_STATES]),
            )
        )
    else:
        condition = exists().where(
            and_(
                computation_participants.c.measurement_id == measurements.c.measurement_id,
                computation_participants.c.duchy_certificate_id == certificate_id,
                computation_participants.c.state == ParticipantState.REQUISITION_PARAMS_SET.value,
            )
        )
    rows = await tx.connection.execute(select(measurements).where(pending, condition))
    for record in [MeasurementRecord.of(r) for r in rows]:
        await end_measurement(
            tx,
            record,
            MeasurementState.FAILED,
            FailureReason.CERTIFICATE_REVOKED,
            f"certificate {key.name} was revoked or put on hold",
        )
