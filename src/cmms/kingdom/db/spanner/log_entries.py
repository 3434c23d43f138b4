"""Log entries on Spanner: the duchies' under their participant, and the Kingdom's own."""

from __future__ import annotations

from typing import Any

from cmms.kingdom.db.log_entries import NewLogEntry
from cmms.kingdom.db.records import LogEntryRecord
from cmms.kingdom.db.spanner import reads
from cmms.kingdom.db.spanner.rows import select_rows
from cmms.kingdom.db.spanner.store import SpannerKingdomStore, SpannerWriteTx
from cmms.kingdom.db.spanner.transitions import write_log
from cmms.kingdom.errors import not_found


class SpannerLogEntryRepository:
    def __init__(self, store: SpannerKingdomStore) -> None:
        self._store = store

    async def create(self, computation_id: int, duchy_id: str, entry: NewLogEntry) -> int:
        """Store the entry; returns its id. NOT_FOUND for an unknown computation or participant."""

        def work(tx: SpannerWriteTx) -> int:
            measurement = reads.measurement_by_computation(tx.transaction, computation_id)
            if measurement is None:
                raise not_found("computation not found")
            snapshot = reads.snapshot(tx.transaction, measurement)
            if snapshot.participant(duchy_id) is None:
                raise not_found(f"duchy {duchy_id} is not a participant of this computation")
            return write_log(
                tx,
                measurement.measurement_id,
                entry.message,
                duchy_id=duchy_id,
                child_reference_id=entry.child_reference_id or None,
                stage_attempt=entry.stage_attempt,
                error_type=entry.error_type,
                error_time_us=entry.error_time_us,
            )

        return await self._store.write(work)

    async def list_for_measurement(self, measurement_id: int) -> list[LogEntryRecord]:
        """Every entry of the measurement (the Kingdom's and the duchies'), oldest first."""

        def query(snapshot: Any) -> list[LogEntryRecord]:
            rows = select_rows(
                snapshot,
                "log_entries",
                "measurement_id = @id",
                order_by="create_time_us, log_entry_id",
                id=measurement_id,
            )
            return [LogEntryRecord.from_mapping(r) for r in rows]

        return await self._store.read(query)
