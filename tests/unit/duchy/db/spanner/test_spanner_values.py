"""Spanner-specific round trips the conformance suite does not stress: arbitrary bytes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cmms.duchy.db.backends import DuchyDatabase, open_duchy_database, upgrade_duchy_database
from cmms.duchy.db.records import NewRequisition, RequisitionKey
from cmms.protocols.stages import ProtocolType
from cmms.testing.manual_clock import ManualClock
from cmms.testing.spanner_emulator import SpannerEmulator

EVERY_BYTE = bytes(range(256))


@pytest.fixture
async def database(spanner_emulator: SpannerEmulator) -> AsyncIterator[DuchyDatabase]:
    url = spanner_emulator.new_database_url()
    await upgrade_duchy_database(url)
    opened = open_duchy_database(url, clock=ManualClock())
    try:
        yield opened
    finally:
        await opened.close()


async def test_binary_details_and_fingerprints_round_trip(database: DuchyDatabase) -> None:
    # The SDK wants base64 for BYTES on the way in and returns base64 on the way out.
    key = RequisitionKey("requisition-1", EVERY_BYTE[::-1])
    created = await database.computations.create_computation(
        global_computation_id="binary",
        protocol=int(ProtocolType.LIQUID_LEGIONS_V2),
        computation_details=EVERY_BYTE,
        stage_details=b"\x00\xff",
        requisitions=(NewRequisition(key, b"\x80not utf-8"),),
    )
    assert created.computation_details == EVERY_BYTE
    assert created.stage_details == b"\x00\xff"
    found = await database.computations.get_token_by_requisition_key(key)
    assert found == created
    assert found.requisitions[0].key.requisition_fingerprint == EVERY_BYTE[::-1]
    assert found.requisitions[0].details == b"\x80not utf-8"
    updated = await database.computations.record_requisition_fulfillment(
        created.local_computation_id, key, "path", update_details=lambda old: old + b"\xfe"
    )
    assert updated.requisitions[0].details == b"\x80not utf-8\xfe"
