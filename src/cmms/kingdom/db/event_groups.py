"""Event groups: a minimal store (the Kingdom never learns which groups a measurement uses)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from cmms.kingdom.db.records import EventGroupRecord
from cmms.kingdom.db.schema import event_groups
from cmms.kingdom.db.store import KingdomStore
from cmms.kingdom.errors import not_found


@dataclass(frozen=True)
class NewEventGroup:
    data_provider_id: str
    measurement_consumer_id: str
    event_group_reference_id: str
    display_name: str = ""
    media_types: tuple[str, ...] = ()
    data_availability_start_us: int | None = None
    data_availability_end_us: int | None = None
    request_id: str | None = None


class EventGroupRepository:
    def __init__(self, store: KingdomStore) -> None:
        self._store = store

    async def create(self, new: NewEventGroup) -> EventGroupRecord:
        """Insert; with a `request_id`, a repeat returns the group created the first time."""
        async with self._store.write() as tx:
            if new.request_id:
                row = (
                    await tx.connection.execute(
                        select(event_groups).where(
                            event_groups.c.data_provider_id == new.data_provider_id,
                            event_groups.c.request_id == new.request_id,
                        )
                    )
                ).first()
                if row is not None:
                    return EventGroupRecord.of(row)
            event_group_id = tx.new_id()
            await tx.connection.execute(
                event_groups.insert().values(
                    event_group_id=event_group_id,
                    data_provider_id=new.data_provider_id,
                    measurement_consumer_id=new.measurement_consumer_id,
                    event_group_reference_id=new.event_group_reference_id,
                    display_name=new.display_name,
                    media_types=json.dumps(list(new.media_types)),
                    data_availability_start_us=new.data_availability_start_us,
                    data_availability_end_us=new.data_availability_end_us,
                    request_id=new.request_id or None,
                    create_time_us=tx.now_us,
                )
            )
            row = (
                await tx.connection.execute(
                    select(event_groups).where(event_groups.c.event_group_id == event_group_id)
                )
            ).one()
            return EventGroupRecord.of(row)

    async def get(self, event_group_id: int) -> EventGroupRecord:
        async with self._store.read() as connection:
            row = (
                await connection.execute(
                    select(event_groups).where(event_groups.c.event_group_id == event_group_id)
                )
            ).first()
        if row is None:
            raise not_found("event group not found")
        return EventGroupRecord.of(row)

    async def find(
        self,
        *,
        data_provider_id: str | None = None,
        measurement_consumer_id: str | None = None,
        data_provider_filter: tuple[str, ...] = (),
    ) -> list[EventGroupRecord]:
        query = select(event_groups)
        if data_provider_id is not None:
            query = query.where(event_groups.c.data_provider_id == data_provider_id)
        if measurement_consumer_id is not None:
            query = query.where(event_groups.c.measurement_consumer_id == measurement_consumer_id)
        if data_provider_filter:
            query = query.where(event_groups.c.data_provider_id.in_(list(data_provider_filter)))
        query = query.order_by(event_groups.c.create_time_us, event_groups.c.event_group_id)
        async with self._store.read() as connection:
            rows = await connection.execute(query)
        return [EventGroupRecord.of(r) for r in rows]
