"""Measurements on Spanner: creation, reads, cancel and TTL expiry (rules as in
`cmms.kingdom.db.measurements`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from cmms.kingdom.config import KingdomConfig
from cmms.kingdom.db.measurements import NewMeasurement, Page, page_token_of, parse_page_token
from cmms.kingdom.db.records import (
    PENDING_MEASUREMENT_STATES,
    MeasurementRecord,
    MeasurementSnapshot,
    MeasurementState,
    ParticipantState,
    Protocol,
    RequisitionState,
)
from cmms.kingdom.db.spanner import reads
from cmms.kingdom.db.spanner.rows import insert, select_one, select_rows
from cmms.kingdom.db.spanner.store import SpannerKingdomStore, SpannerWriteTx
from cmms.kingdom.db.spanner.transitions import end_measurement, write_log
from cmms.kingdom.db.transitions import check_etag
from cmms.kingdom.errors import failed_precondition, invalid_argument, not_found
from cmms.kingdom.planning import (
    EdpFacts,
    aggregator_of,
    allows_wrapping_sampling_interval,
    check_ring_modulus,
    choose_duchies,
    choose_protocol,
    preassigned_duchy,
)
from cmms.kingdom.protocol_configs import build_configs
from cmms.kingdom.timestamps import from_micros

# Measurements cancelled per transaction by the TTL job.
CANCEL_CHUNK = 100


class SpannerMeasurementRepository:
    def __init__(self, store: SpannerKingdomStore, config: KingdomConfig) -> None:
        self._store = store
        self._config = config

    async def create(self, new: NewMeasurement) -> MeasurementSnapshot:
        """Select protocol and duchies and insert everything in one transaction (spec §3.4)."""
        return await self._store.write_then_read(
            lambda tx: self._create(tx, new), reads.snapshot_of
        )

    def _create(self, tx: SpannerWriteTx, new: NewMeasurement) -> int:
        reader = tx.transaction
        facts = []
        edp_certificates = []
        for entry in new.requisitions:
            edp = reads.data_provider(reader, entry.data_provider_id)
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
        if new.sampling_interval_wraps and not allows_wrapping_sampling_interval(choice.protocol):
            raise invalid_argument(
                "vid_sampling_interval must end at or before 1 for this protocol"
            )
        if reads.measurement_consumer(reader, new.measurement_consumer_id) is None:
            raise not_found(f"measurementConsumers/{new.measurement_consumer_id} not found")
        mc_certificate = reads.certificate(reader, new.measurement_consumer_certificate_id)
        if mc_certificate is None or mc_certificate.owner_id != new.measurement_consumer_id:
            raise not_found("measurement_consumer_certificate not found")
        if not mc_certificate.is_valid_at(tx.now_us):
            raise failed_precondition("measurement_consumer_certificate is not valid")
        if new.request_id:
            existing = select_one(
                reader,
                "measurements",
                "measurement_consumer_id = @mc AND request_id = @request",
                mc=new.measurement_consumer_id,
                request=new.request_id,
            )
            if existing is not None:
                return int(existing["measurement_id"])
        for entry, certificate_id in zip(new.requisitions, edp_certificates, strict=True):
            certificate = (
                None if certificate_id is None else reads.certificate(reader, certificate_id)
            )
            if certificate is None or not certificate.is_valid_at(tx.now_us):
                raise failed_precondition(
                    f"dataProviders/{entry.data_provider_id} has no valid certificate"
                )
        duchy_ids = choose_duchies(self._config, choice.protocol, facts, from_micros(tx.now_us))
        public_config, mpc_config = build_configs(self._config, choice, new.measurement_type)
        return self._insert(
            tx,
            new,
            choice.protocol,
            public_config.SerializeToString(),
            None if mpc_config is None else mpc_config.SerializeToString(),
            duchy_ids,
            [c for c in edp_certificates if c is not None],
        )

    def _insert(
        self,
        tx: SpannerWriteTx,
        new: NewMeasurement,
        protocol: Protocol,
        protocol_config: bytes,
        duchy_protocol_config: bytes | None,
        duchy_ids: tuple[str, ...],
        edp_certificate_ids: list[int],
    ) -> int:
        measurement_id = tx.new_id()
        is_mpc = protocol is not Protocol.DIRECT
        state = (
            MeasurementState.PENDING_REQUISITION_PARAMS
            if is_mpc
            else MeasurementState.PENDING_REQUISITION_FULFILLMENT
        )
        insert(
            tx,
            "measurements",
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
        requisition_state = (
            RequisitionState.PENDING_PARAMS if is_mpc else RequisitionState.UNFULFILLED
        )
        for position, (entry, certificate_id) in enumerate(
            zip(new.requisitions, edp_certificate_ids, strict=True)
        ):
            requisition_id = tx.new_id()
            insert(
                tx,
                "requisitions",
                measurement_id=measurement_id,
                requisition_id=requisition_id,
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
        for position, duchy_id in enumerate(duchy_ids):
            insert(
                tx,
                "computation_participants",
                measurement_id=measurement_id,
                duchy_id=duchy_id,
                position=position,
                state=ParticipantState.CREATED.value,
                update_time_us=tx.now_us,
            )
        write_log(tx, measurement_id, f"measurement created ({protocol.value}, {state.value})")
        return measurement_id

    async def get(self, mc_id: str, measurement_id: int) -> MeasurementSnapshot:
        def query(snapshot: Any) -> MeasurementSnapshot:
            record = reads.measurement(snapshot, measurement_id)
            if record is None or record.measurement_consumer_id != mc_id:
                raise not_found("measurement not found")
            return reads.snapshot(snapshot, record)

        return await self._store.read(query)

    async def list_page(
        self,
        mc_id: str,
        states: Collection[MeasurementState] = (),
        page_size: int = 50,
        page_token: str = "",
    ) -> Page:
        conditions = ["measurement_consumer_id = @mc"]
        params: dict[str, Any] = {"mc": mc_id}
        if states:
            conditions.append("state IN UNNEST(@states)")
            params["states"] = sorted(s.value for s in states)
        if page_token:
            params["after_time"], params["after_id"] = parse_page_token(page_token)
            conditions.append(
                "(create_time_us > @after_time"
                " OR (create_time_us = @after_time AND measurement_id > @after_id))"
            )

        def query(snapshot: Any) -> tuple[list[MeasurementSnapshot], bool]:
            rows = select_rows(
                snapshot,
                "measurements",
                " AND ".join(conditions),
                order_by="create_time_us, measurement_id",
                limit=page_size + 1,
                **params,
            )
            records = [MeasurementRecord.from_mapping(r) for r in rows[:page_size]]
            return reads.snapshots(snapshot, records), len(rows) > page_size

        items, more = await self._store.read(query)
        token = page_token_of(items[-1].measurement) if more else ""
        return Page(items, token)

    async def cancel(
        self, mc_id: str, measurement_id: int, given_etag: str = ""
    ) -> MeasurementSnapshot:
        """Any pending state -> CANCELLED, withdrawing open requisitions."""

        def work(tx: SpannerWriteTx) -> int:
            record = reads.measurement(tx.transaction, measurement_id)
            if record is None or record.measurement_consumer_id != mc_id:
                raise not_found("measurement not found")
            check_etag(given_etag, record.update_time_us)
            if record.measurement_state.is_terminal:
                raise failed_precondition(f"measurement is already {record.state}")
            end_measurement(tx, record, MeasurementState.CANCELLED)
            return measurement_id

        return await self._store.write_then_read(work, reads.snapshot_of)

    async def cancel_expired(
        self, created_before_us: int, *, batch_size: int = 1000, dry_run: bool = False
    ) -> list[int]:
        """Cancel up to `batch_size` pending measurements created before the cutoff (TTL job).

        In transactions of at most `CANCEL_CHUNK` measurements: a Spanner commit holds a bounded
        number of mutations, and each cancellation writes the measurement, a log entry and every
        open requisition (each also updating indexes).
        """
        if dry_run:
            expired = await self._store.read(lambda s: _expired(s, created_before_us, batch_size))
            return [r.measurement_id for r in expired]
        cancelled: list[int] = []
        while len(cancelled) < batch_size:
            chunk = min(CANCEL_CHUNK, batch_size - len(cancelled))

            def work(tx: SpannerWriteTx, limit: int = chunk) -> list[int]:
                expired = _expired(tx.transaction, created_before_us, limit)
                for record in expired:
                    end_measurement(tx, record, MeasurementState.CANCELLED)
                return [r.measurement_id for r in expired]

            done = await self._store.write(work)
            cancelled += done
            if len(done) < chunk:
                break
        return cancelled


def _expired(reader: Any, created_before_us: int, limit: int) -> list[MeasurementRecord]:
    rows = select_rows(
        reader,
        "measurements",
        "state IN UNNEST(@pending) AND create_time_us < @cutoff",
        order_by="create_time_us",
        limit=limit,
        pending=sorted(s.value for s in PENDING_MEASUREMENT_STATES),
        cutoff=created_before_us,
    )
    return [MeasurementRecord.from_mapping(r) for r in rows]
