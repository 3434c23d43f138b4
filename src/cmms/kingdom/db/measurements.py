"""Measurements: creation (with protocol and duchy selection), reads, cancel and TTL expiry."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select, tuple_

from cmms.kingdom.config import KingdomConfig
from cmms.kingdom.db import reads
from cmms.kingdom.db.records import (
    PENDING_MEASUREMENT_STATES,
    MeasurementRecord,
    MeasurementSnapshot,
    MeasurementState,
    ParticipantState,
    Protocol,
    RequisitionState,
)
from cmms.kingdom.db.schema import computation_participants, measurements, requisitions
from cmms.kingdom.db.store import KingdomStore, WriteTx
from cmms.kingdom.db.transitions import check_etag, end_measurement, write_log
from cmms.kingdom.errors import failed_precondition, invalid_argument, not_found
from cmms.kingdom.planning import (
    EdpFacts,
    MeasurementType,
    aggregator_of,
    allows_wrapping_sampling_interval,
    check_ring_modulus,
    choose_duchies,
    choose_protocol,
    preassigned_duchy,
)
from cmms.kingdom.protocol_configs import build_configs
from cmms.kingdom.timestamps import from_micros


@dataclass(frozen=True)
class NewRequisition:
    """One EDP entry of a CreateMeasurement request, as received."""

    data_provider_id: str
    data_provider_public_key: bytes
    encrypted_requisition_spec: bytes
    nonce_hash: bytes


@dataclass(frozen=True)
class NewMeasurement:
    """A validated CreateMeasurement request; the bytes are stored exactly as received."""

    measurement_consumer_id: str
    measurement_consumer_certificate_id: int
    measurement_reference_id: str
    request_id: str
    api_version: str
    measurement_spec: bytes
    measurement_spec_signature: bytes
    measurement_spec_signature_algorithm_oid: str
    measurement_type: MeasurementType
    sampling_interval_wraps: bool
    requisitions: tuple[NewRequisition, ...]
    # Of a reach-and-frequency spec; 1 for every other type.
    maximum_frequency: int = 1


@dataclass(frozen=True)
class Page:
    items: list[MeasurementSnapshot]
    next_page_token: str


def page_token_of(record: MeasurementRecord) -> str:
    raw = f"{record.create_time_us}:{record.measurement_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def parse_page_token(token: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        create, _, ident = raw.partition(":")
        return int(create), int(ident)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise invalid_argument("malformed page_token") from exc


class MeasurementRepository:
    def __init__(self, store: KingdomStore, config: KingdomConfig) -> None:
        self._store = store
        self._config = config

    async def create(self, new: NewMeasurement) -> MeasurementSnapshot:
        """Select protocol and duchies and insert everything in one transaction (spec §3.4)."""
        async with self._store.write() as tx:
            connection = tx.connection
            facts = []
            edp_certificates = []
            for entry in new.requisitions:
                edp = await reads.data_provider(connection, entry.data_provider_id)
                if edp is None:
                    raise not_found(f"dataProviders/{entry.data_provider_id} not found")
                facts.append(EdpFacts(edp.data_provider_id, edp.capabilities, edp.required_duchies))
                edp_certificates.append(edp.certificate_id)
            choice = choose_protocol(
                self._config, new.measurement_type, new.measurement_consumer_id, facts
            )
            check_ring_modulus(
                self._config,
                choice.protocol,
                new.measurement_type,
                new.maximum_frequency,
                len(new.requisitions),
            )
            if new.sampling_interval_wraps and not allows_wrapping_sampling_interval(
                choice.protocol
            ):
                raise invalid_argument(
                    "vid_sampling_interval must end at or before 1 for this protocol"
                )
            if await reads.measurement_consumer(connection, new.measurement_consumer_id) is None:
                raise not_found(f"measurementConsumers/{new.measurement_consumer_id} not found")
            mc_certificate = await reads.certificate(
                connection, new.measurement_consumer_certificate_id
            )
            if mc_certificate is None or mc_certificate.owner_id != new.measurement_consumer_id:
                raise not_found("measurement_consumer_certificate not found")
            if not mc_certificate.is_valid_at(tx.now_us):
                raise failed_precondition("measurement_consumer_certificate is not valid")
            if new.request_id:
                existing = (
                    await connection.execute(
                        select(measurements).where(
                            measurements.c.measurement_consumer_id == new.measurement_consumer_id,
                            measurements.c.request_id == new.request_id,
                        )
                    )
                ).first()
                if existing is not None:
                    return await reads.snapshot(connection, MeasurementRecord.of(existing))
            for entry, certificate_id in zip(new.requisitions, edp_certificates, strict=True):
                certificate = (
                    None
                    if certificate_id is None
                    else await reads.certificate(connection, certificate_id)
                )
                if certificate is None or not certificate.is_valid_at(tx.now_us):
                    raise failed_precondition(
                        f"dataProviders/{entry.data_provider_id} has no valid certificate"
                    )
            duchy_ids = choose_duchies(self._config, choice.protocol, facts, from_micros(tx.now_us))
            public_config, mpc_config = build_configs(self._config, choice, new.measurement_type)
            record = await self._insert(
                tx,
                new,
                choice.protocol,
                public_config.SerializeToString(),
                None if mpc_config is None else mpc_config.SerializeToString(),
                duchy_ids,
                [c for c in edp_certificates if c is not None],
            )
            return await reads.snapshot(connection, record)

    async def _insert(
        self,
        tx: WriteTx,
        new: NewMeasurement,
        protocol: Protocol,
        protocol_config: bytes,
        duchy_protocol_config: bytes | None,
        duchy_ids: tuple[str, ...],
        edp_certificate_ids: list[int],
    ) -> MeasurementRecord:
        measurement_id = tx.new_id()
        is_mpc = protocol is not Protocol.DIRECT
        state = (
            MeasurementState.PENDING_REQUISITION_PARAMS
            if is_mpc
            else MeasurementState.PENDING_REQUISITION_FULFILLMENT
        )
        await tx.connection.execute(
            measurements.insert().values(
                measurement_id=measurement_id,
                measurement_consumer_id=new.measurement_consumer_id,
                computation_id=tx.new_id() if is_mpc else None,
                measurement_consumer_certificate_id=new.measurement_consumer_certificate_id,
                measurement_reference_id=new.measurement_reference_id,
                request_id=new.request_id or None,
                api_version=new.api_version,
                measurement_spec=new.measurement_spec,
                measurement_spec_signature=new.measurement_spec_signature,
                measurement_spec_signature_algorithm_oid=new.measurement_spec_signature_algorithm_oid,
                protocol=protocol.value,
                protocol_config=protocol_config,
                duchy_protocol_config=duchy_protocol_config,
                aggregator_duchy_id=aggregator_of(self._config, protocol),
                state=state.value,
                create_time_us=tx.now_us,
                update_time_us=tx.now_us,
            )
        )
        requisition_state = (
            RequisitionState.PENDING_PARAMS if is_mpc else RequisitionState.UNFULFILLED
        )
        for position, (entry, certificate_id) in enumerate(
            zip(new.requisitions, edp_certificate_ids, strict=True)
        ):
            requisition_id = tx.new_id()
            await tx.connection.execute(
                requisitions.insert().values(
                    requisition_id=requisition_id,
                    measurement_id=measurement_id,
                    position=position,
                    data_provider_id=entry.data_provider_id,
                    data_provider_certificate_id=certificate_id,
                    data_provider_public_key=entry.data_provider_public_key,
                    encrypted_requisition_spec=entry.encrypted_requisition_spec,
                    nonce_hash=entry.nonce_hash,
                    state=requisition_state.value,
                    fulfilling_duchy_id=preassigned_duchy(self._config, protocol, requisition_id),
                    update_time_us=tx.now_us,
                )
            )
        for position, duchy_id in enumerate(duchy_ids):
            await tx.connection.execute(
                computation_participants.insert().values(
                    measurement_id=measurement_id,
                    duchy_id=duchy_id,
                    position=position,
                    state=ParticipantState.CREATED.value,
                    update_time_us=tx.now_us,
                )
            )
        await write_log(
            tx, measurement_id, f"measurement created ({protocol.value}, {state.value})"
        )
        record = await reads.measurement(tx.connection, measurement_id)
        assert record is not None
        return record

    async def get(self, mc_id: str, measurement_id: int) -> MeasurementSnapshot:
        async with self._store.read() as connection:
            record = await reads.measurement(connection, measurement_id)
            if record is None or record.measurement_consumer_id != mc_id:
                raise not_found("measurement not found")
            return await reads.snapshot(connection, record)

    async def list_page(
        self,
        mc_id: str,
        states: Collection[MeasurementState] = (),
        page_size: int = 50,
        page_token: str = "",
    ) -> Page:
        query = select(measurements).where(measurements.c.measurement_consumer_id == mc_id)
        if states:
            query = query.where(measurements.c.state.in_([s.value for s in states]))
        if page_token:
            query = query.where(
                tuple_(measurements.c.create_time_us, measurements.c.measurement_id)
                > tuple_(*parse_page_token(page_token))
            )
        query = query.order_by(measurements.c.create_time_us, measurements.c.measurement_id)
        async with self._store.read() as connection:
            rows = list(await connection.execute(query.limit(page_size + 1)))
            records = [MeasurementRecord.of(r) for r in rows[:page_size]]
            items = [await reads.snapshot(connection, r) for r in records]
        token = page_token_of(records[-1]) if len(rows) > page_size else ""
        return Page(items, token)

    async def cancel(
        self, mc_id: str, measurement_id: int, given_etag: str = ""
    ) -> MeasurementSnapshot:
        """Any pending state -> CANCELLED, withdrawing open requisitions."""
        async with self._store.write() as tx:
            record = await reads.measurement(tx.connection, measurement_id)
            if record is None or record.measurement_consumer_id != mc_id:
                raise not_found("measurement not found")
            check_etag(given_etag, record.update_time_us)
            if record.measurement_state.is_terminal:
                raise failed_precondition(f"measurement is already {record.state}")
            await end_measurement(tx, record, MeasurementState.CANCELLED)
            updated = await reads.measurement(tx.connection, measurement_id)
            assert updated is not None
            return await reads.snapshot(tx.connection, updated)

    async def cancel_expired(
        self, created_before_us: int, *, batch_size: int = 1000, dry_run: bool = False
    ) -> list[int]:
        """Cancel up to `batch_size` pending measurements created before the cutoff (TTL job)."""
        async with self._store.write() as tx:
            rows = await tx.connection.execute(
                select(measurements)
                .where(
                    measurements.c.state.in_([s.value for s in PENDING_MEASUREMENT_STATES]),
                    measurements.c.create_time_us < created_before_us,
                )
                .order_by(measurements.c.create_time_us)
                .limit(batch_size)
            )
            expired = [MeasurementRecord.of(r) for r in rows]
            if not dry_run:
                for record in expired:
                    await end_measurement(tx, record, MeasurementState.CANCELLED)
            return [r.measurement_id for r in expired]
