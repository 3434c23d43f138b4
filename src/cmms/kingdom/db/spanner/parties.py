"""Duchies (from config), measurement consumers and data providers on Spanner."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.cloud import spanner

from cmms.kingdom.config import DuchyConfig
from cmms.kingdom.db.records import Capabilities, DataProviderRecord, MeasurementConsumerRecord
from cmms.kingdom.db.spanner import reads
from cmms.kingdom.db.spanner.rows import insert, insert_or_update, scalars, update
from cmms.kingdom.db.spanner.store import SpannerKingdomStore, SpannerWriteTx
from cmms.kingdom.errors import not_found
from cmms.kingdom.timestamps import to_micros

_key_set: Any = spanner.KeySet


class SpannerPartyRepository:
    def __init__(self, store: SpannerKingdomStore) -> None:
        self._store = store

    async def sync_duchies(self, configured: Sequence[DuchyConfig]) -> None:
        """Make the `duchies` table mirror the config (kept for operators and foreign data)."""

        def work(tx: SpannerWriteTx) -> None:
            wanted = {duchy.id for duchy in configured}
            stale = [
                d
                for d in scalars(tx.transaction, "SELECT duchy_id FROM duchies")
                if d not in wanted
            ]
            if stale:
                tx.transaction.delete("duchies", _key_set(keys=[[d] for d in stale]))
            for position, duchy in enumerate(configured):
                insert_or_update(
                    tx,
                    "duchies",
                    duchy_id=duchy.id,
                    position=position,
                    active_start_time_us=to_micros(duchy.active_start_time),
                    active_end_time_us=None
                    if duchy.active_end_time is None
                    else to_micros(duchy.active_end_time),
                )

        await self._store.write(work)

    async def upsert_measurement_consumer(
        self,
        mc_id: str,
        *,
        display_name: str = "",
        public_key: bytes | None = None,
        certificate_id: int | None = None,
    ) -> MeasurementConsumerRecord:
        """Create or update an MC (admin seeding); unset arguments keep stored values."""

        def work(tx: SpannerWriteTx) -> str:
            existing = reads.measurement_consumer(tx.transaction, mc_id)
            if existing is None:
                insert(
                    tx,
                    "measurement_consumers",
                    measurement_consumer_id=mc_id,
                    display_name=display_name,
                    public_key=public_key,
                    certificate_id=certificate_id,
                    create_time_us=tx.now_us,
                    update_time_us=tx.now_us,
                )
                return mc_id
            values: dict[str, object] = {"update_time_us": tx.now_us}
            if display_name:
                values["display_name"] = display_name
            if public_key is not None:
                values["public_key"] = public_key
            if certificate_id is not None:
                values["certificate_id"] = certificate_id
            update(tx, "measurement_consumers", measurement_consumer_id=mc_id, **values)
            return mc_id

        return await self._store.write_then_read(work, _measurement_consumer)

    async def upsert_data_provider(
        self,
        dp_id: str,
        *,
        display_name: str = "",
        public_key: bytes | None = None,
        certificate_id: int | None = None,
        required_duchies: Sequence[str] | None = None,
        capabilities: Capabilities | None = None,
    ) -> DataProviderRecord:
        """Create or update an EDP (admin seeding); unset arguments keep stored values."""

        def work(tx: SpannerWriteTx) -> str:
            existing = reads.data_provider(tx.transaction, dp_id)
            caps = capabilities or (existing.capabilities if existing else Capabilities())
            values: dict[str, object] = {
                "update_time_us": tx.now_us,
                "hmss_supported": caps.hmss_supported,
                "trustee_supported": caps.trustee_supported,
                "noise_none_supported": caps.noise_none_supported,
                "noise_dtl_supported": caps.noise_dtl_supported,
            }
            if display_name or existing is None:
                values["display_name"] = display_name
            if public_key is not None or existing is None:
                values["public_key"] = public_key
            if certificate_id is not None or existing is None:
                values["certificate_id"] = certificate_id
            if required_duchies is not None or existing is None:
                values["required_duchies"] = json.dumps(list(required_duchies or ()))
            if existing is None:
                insert(
                    tx, "data_providers", data_provider_id=dp_id, create_time_us=tx.now_us, **values
                )
            else:
                update(tx, "data_providers", data_provider_id=dp_id, **values)
            return dp_id

        return await self._store.write_then_read(work, _data_provider)

    async def get_measurement_consumer(self, mc_id: str) -> MeasurementConsumerRecord:
        record = await self._store.read(lambda s: reads.measurement_consumer(s, mc_id))
        if record is None:
            raise not_found(f"measurementConsumers/{mc_id} not found")
        return record

    async def get_data_provider(self, dp_id: str) -> DataProviderRecord:
        record = await self._store.read(lambda s: reads.data_provider(s, dp_id))
        if record is None:
            raise not_found(f"dataProviders/{dp_id} not found")
        return record

    async def replace_capabilities(
        self, dp_id: str, capabilities: Capabilities
    ) -> DataProviderRecord:
        def work(tx: SpannerWriteTx) -> str:
            if reads.data_provider(tx.transaction, dp_id) is None:
                raise not_found(f"dataProviders/{dp_id} not found")
            update(
                tx,
                "data_providers",
                data_provider_id=dp_id,
                hmss_supported=capabilities.hmss_supported,
                trustee_supported=capabilities.trustee_supported,
                noise_none_supported=capabilities.noise_none_supported,
                noise_dtl_supported=capabilities.noise_dtl_supported,
                update_time_us=tx.now_us,
            )
            return dp_id

        return await self._store.write_then_read(work, _data_provider)


def _measurement_consumer(reader: Any, mc_id: str) -> MeasurementConsumerRecord:
    record = reads.measurement_consumer(reader, mc_id)
    assert record is not None, mc_id
    return record


def _data_provider(reader: Any, dp_id: str) -> DataProviderRecord:
    record = reads.data_provider(reader, dp_id)
    assert record is not None, dp_id
    return record
