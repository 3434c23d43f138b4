"""Event groups on Spanner (the minimal store of `cmms.kingdom.db.event_groups`)."""

from __future__ import annotations

import json
from typing import Any

from cmms.kingdom.db.event_groups import NewEventGroup
from cmms.kingdom.db.records import EventGroupRecord
from cmms.kingdom.db.spanner.rows import insert, select_one, select_rows
from cmms.kingdom.db.spanner.store import SpannerKingdomStore, SpannerWriteTx
from cmms.kingdom.errors import not_found


class SpannerEventGroupRepository:
    def __init__(self, store: SpannerKingdomStore) -> None:
        self._store = store

    async def create(self, new: NewEventGroup) -> EventGroupRecord:
        """Insert; with a `request_id`, a repeat returns the group created the first time."""

        def work(tx: SpannerWriteTx) -> int:
            if new.request_id:
                row = select_one(
                    tx.transaction,
                    "event_groups",
                    "data_provider_id = @dp AND request_id = @request",
                    dp=new.data_provider_id,
                    request=new.request_id,
                )
                if row is not None:
                    return int(row["event_group_id"])
            event_group_id = tx.new_id()
            insert(
                tx,
                "event_groups",
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
            return event_group_id

        def read_back(reader: Any, event_group_id: int) -> EventGroupRecord:
            record = _event_group(reader, event_group_id)
            assert record is not None, event_group_id
            return record

        return await self._store.write_then_read(work, read_back)

    async def get(self, event_group_id: int) -> EventGroupRecord:
        record = await self._store.read(lambda s: _event_group(s, event_group_id))
        if record is None:
            raise not_found("event group not found")
        return record

    async def find(
        self,
        *,
        data_provider_id: str | None = None,
        measurement_consumer_id: str | None = None,
        data_provider_filter: tuple[str, ...] = (),
    ) -> list[EventGroupRecord]:
        conditions = ["TRUE"]
        params: dict[str, Any] = {}
        if data_provider_id is not None:
            conditions.append("data_provider_id = @dp")
            params["dp"] = data_provider_id
        if measurement_consumer_id is not None:
            conditions.append("measurement_consumer_id = @mc")
            params["mc"] = measurement_consumer_id
        if data_provider_filter:
            conditions.append("data_provider_id IN UNNEST(@dps)")
            params["dps"] = list(data_provider_filter)

        def query(snapshot: Any) -> list[EventGroupRecord]:
            rows = select_rows(
                snapshot,
                "event_groups",
                " AND ".join(conditions),
                order_by="create_time_us, event_group_id",
                **params,
            )
            return [EventGroupRecord.from_mapping(r) for r in rows]

        return await self._store.read(query)


def _event_group(reader: Any, event_group_id: int) -> EventGroupRecord | None:
    row = select_one(reader, "event_groups", "event_group_id = @id", id=event_group_id)
    return None if row is None else EventGroupRecord.from_mapping(row)
