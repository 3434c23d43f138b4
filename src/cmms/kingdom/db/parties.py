"""Duchies (from config), measurement consumers and data providers."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import delete, update

from cmms.kingdom.config import DuchyConfig
from cmms.kingdom.db import reads
from cmms.kingdom.db.records import Capabilities, DataProviderRecord, MeasurementConsumerRecord
from cmms.kingdom.db.schema import data_providers, duchies, measurement_consumers
from cmms.kingdom.db.store import KingdomStore
from cmms.kingdom.errors import not_found
from cmms.kingdom.timestamps import to_micros


class PartyRepository:
    def __init__(self, store: KingdomStore) -> None:
        self._store = store

    async def sync_duchies(self, configured: Sequence[DuchyConfig]) -> None:
        """Make the `duchies` table mirror the config (kept for operators and foreign data)."""
        async with self._store.write() as tx:
            await tx.connection.execute(delete(duchies))
            for position, duchy in enumerate(configured):
                await tx.connection.execute(
                    duchies.insert().values(
                        duchy_id=duchy.id,
                        position=position,
                        active_start_time_us=to_micros(duchy.active_start_time),
                        active_end_time_us=None
                        if duchy.active_end_time is None
                        else to_micros(duchy.active_end_time),
                    )
                )

    async def upsert_measurement_consumer(
        self,
        mc_id: str,
        *,
        display_name: str = "",
        public_key: bytes | None = None,
        certificate_id: int | None = None,
    ) -> MeasurementConsumerRecord:
        """Create or update an MC (admin seeding); unset arguments keep stored values."""
        async with self._store.write() as tx:
            existing = await reads.measurement_consumer(tx.connection, mc_id)
            if existing is None:
                await tx.connection.execute(
                    measurement_consumers.insert().values(
                        measurement_consumer_id=mc_id,
                        display_name=display_name,
                        public_key=public_key,
                        certificate_id=certificate_id,
                        create_time_us=tx.now_us,
                        update_time_us=tx.now_us,
                    )
                )
            else:
                values: dict[str, object] = {"update_time_us": tx.now_us}
                if display_name:
                    values["display_name"] = display_name
                if public_key is not None:
                    values["public_key"] = public_key
                if certificate_id is not None:
                    values["certificate_id"] = certificate_id
                await tx.connection.execute(
                    update(measurement_consumers)
                    .where(measurement_consumers.c.measurement_consumer_id == mc_id)
                    .values(**values)
                )
            record = await reads.measurement_consumer(tx.connection, mc_id)
            assert record is not None
            return record

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
        async with self._store.write() as tx:
            existing = await reads.data_provider(tx.connection, dp_id)
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
                await tx.connection.execute(
                    data_providers.insert().values(
                        data_provider_id=dp_id, create_time_us=tx.now_us, **values
                    )
                )
            else:
                await tx.connection.execute(
                    update(data_providers)
                    .where(data_providers.c.data_provider_id == dp_id)
                    .values(**values)
                )
            record = await reads.data_provider(tx.connection, dp_id)
            assert record is not None
            return record

    async def get_measurement_consumer(self, mc_id: str) -> MeasurementConsumerRecord:
        async with self._store.read() as connection:
            record = await reads.measurement_consumer(connection, mc_id)
        if record is None:
            raise not_found(f"measurementConsumers/{mc_id} not found")
        return record

    async def get_data_provider(self, dp_id: str) -> DataProviderRecord:
        async with self._store.read() as connection:
            record = await reads.data_provider(connection, dp_id)
        if record is None:
            raise not_found(f"dataProviders/{dp_id} not found")
        return record

    async def replace_capabilities(
        self, dp_id: str, capabilities: Capabilities
    ) -> DataProviderRecord:
        async with self._store.write() as tx:
            if await reads.data_provider(tx.connection, dp_id) is None:
                raise not_found(f"dataProviders/{dp_id} not found")
            await tx.connection.execute(
                update(data_providers)
                .where(data_providers.c.data_provider_id == dp_id)
                .values(
                    hmss_supported=capabilities.hmss_supported,
                    trustee_supported=capabilities.trustee_supported,
                    noise_none_supported=capabilities.noise_none_supported,
                    noise_dtl_supported=capabilities.noise_dtl_supported,
                    update_time_us=tx.now_us,
                )
            )
            record = await reads.data_provider(tx.connection, dp_id)
            assert record is not None
            return record
