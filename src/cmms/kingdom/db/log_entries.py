"""Log entries: the duchies' under their participant, and the Kingdom's own (no public read API;
they are read by operators and tests)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from cmms.kingdom.db import reads
from cmms.kingdom.db.records import LogEntryRecord
from cmms.kingdom.db.schema import log_entries
from cmms.kingdom.db.store import KingdomStore
from cmms.kingdom.db.transitions import write_log
from cmms.kingdom.errors import not_found


@dataclass(frozen=True)
class NewLogEntry:
    message: str
    child_reference_id: str = ""
    stage_attempt: bytes | None = None
    error_type: str | None = None
    error_time_us: int | None = None


class LogEntryRepository:
    def __init__(self, store: KingdomStore) -> None:
        self._store = store

    async def create(self, computation_id: int, duchy_id: str, entry: NewLogEntry) -> int:
        """Store the entry; returns its id. NOT_FOUND for an unknown computation or participant."""
        async with self._store.write() as tx:
            measurement = await reads.measurement_by_computation(tx.connection, computation_id)
            if measurement is None:
                raise not_found("computation not found")
            snapshot = await reads.snapshot(tx.connection, measurement)
            if snapshot.participant(duchy_id) is None:
                raise not_found(f"duchy {duchy_id} is not a participant of this computation")
            return await write_log(
                tx,
                measurement.measurement_id,
                entry.message,
                duchy_id=duchy_id,
                child_reference_id=entry.child_reference_id or None,
                stage_attempt=entry.stage_attempt,
                error_type=entry.error_type,
                error_time_us=entry.error_time_us,
            )

    async def list_for_measurement(self, measurement_id: int) -> list[LogEntryRecord]:
        """Every entry of the measurement (the Kingdom's and the duchies'), oldest first."""
        query = (
            select(log_entries)
            .where(log_entries.c.measurement_id == measurement_id)
            .order_by(log_entries.c.create_time_us, log_entries.c.log_entry_id)
        )
        async with self._store.read() as connection:
            rows = await connection.execute(query)
        return [LogEntryRecord.of(r) for r in rows]
