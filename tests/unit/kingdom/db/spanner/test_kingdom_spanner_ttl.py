"""The TTL job on Spanner cancels in bounded transactions without changing what it cancels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from cmms.api.public.v1 import measurements_pb2
from cmms.common.pki import PkiLayout
from cmms.kingdom.db.spanner import measurements as spanner_measurements
from cmms.kingdom.jobs.ttl import expire_once
from cmms.kingdom.timestamps import to_micros
from cmms.testing.kingdom import Flow, KingdomWorld
from cmms.testing.spanner_emulator import SpannerEmulator

EDPS = ("edp1", "edp2", "edp3")
Measurement = measurements_pb2.Measurement


@pytest.fixture
async def world(
    spanner_emulator: SpannerEmulator, dev_pki: PkiLayout
) -> AsyncIterator[KingdomWorld]:
    opened = await KingdomWorld.open(spanner_emulator.new_database_url("kingdom"), dev_pki)
    try:
        yield opened
    finally:
        await opened.close()


async def test_expiry_spans_several_transactions_and_stops_at_the_batch_size(
    world: KingdomWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spanner_measurements, "CANCEL_CHUNK", 2)
    flow = Flow(world)
    created = [await flow.create(world.measurement_request(EDPS)) for _ in range(5)]
    world.advance(timedelta(hours=2))
    young = await flow.create(world.measurement_request(EDPS))
    measurements = world.repositories.measurements

    dry = await measurements.cancel_expired(_cutoff(world), batch_size=10, dry_run=True)
    assert len(dry) == 5
    first = await measurements.cancel_expired(_cutoff(world), batch_size=3)
    assert first == dry[:3]  # oldest first, across two transactions (2 + 1)
    rest = await expire_once(measurements, timedelta(hours=1), clock=world.clock, batch_size=3)
    assert rest == dry[3:]
    for measurement in created:
        assert (await flow.get_measurement(measurement.name)).state == Measurement.CANCELLED
    assert (await flow.get_measurement(young.name)).state != Measurement.CANCELLED


def _cutoff(world: KingdomWorld) -> int:
    return to_micros(world.clock() - timedelta(hours=1))
