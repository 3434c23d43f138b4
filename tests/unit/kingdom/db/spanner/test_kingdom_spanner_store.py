"""The Spanner single writer: timestamps from the clock row, rollback, read-back at commit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from cmms.common.spanner.connection import open_spanner
from cmms.common.spanner.url import SpannerUrl
from cmms.kingdom.db.spanner import reads, rows
from cmms.kingdom.db.spanner.migrate import upgrade_spanner
from cmms.kingdom.db.spanner.store import SpannerKingdomStore, SpannerWriteTx
from cmms.kingdom.timestamps import to_micros
from cmms.testing.manual_clock import ManualClock
from cmms.testing.spanner_emulator import SpannerEmulator


@pytest.fixture
async def database_url(spanner_emulator: SpannerEmulator) -> str:
    url = spanner_emulator.new_database_url("kingdom")
    await asyncio.to_thread(upgrade_spanner, url)
    return url


@pytest.fixture
async def opened() -> AsyncIterator[list[SpannerKingdomStore]]:
    """Stores a test opens, closed at its end."""
    stores: list[SpannerKingdomStore] = []
    yield stores
    for store in stores:
        store.close()


def open_store(
    url: str, opened: list[SpannerKingdomStore], clock: ManualClock
) -> SpannerKingdomStore:
    store = SpannerKingdomStore(open_spanner(SpannerUrl.parse(url)), clock=clock)
    opened.append(store)
    return store


async def test_write_timestamps_strictly_increase_even_when_the_clock_does_not(
    database_url: str, opened: list[SpannerKingdomStore]
) -> None:
    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    store = open_store(database_url, opened, clock)

    async def stamp(on: SpannerKingdomStore = store) -> int:
        return await on.write(lambda tx: tx.now_us)

    frozen = [await stamp() for _ in range(3)]
    assert frozen == [to_micros(clock()) + i for i in range(3)]
    concurrent = await asyncio.gather(*(stamp() for _ in range(10)))
    assert sorted(concurrent) == list(range(frozen[-1] + 1, frozen[-1] + 11))
    clock.advance(timedelta(seconds=1))
    assert await stamp() == to_micros(clock())
    # A second store (another Kingdom process, or a restart) whose clock is behind keeps going
    # forward from the stored time, also while both write at once.
    behind = open_store(database_url, opened, ManualClock(datetime(2029, 1, 1, tzinfo=UTC)))
    both = await asyncio.gather(*(stamp(s) for s in (store, behind) for _ in range(5)))
    assert sorted(both) == list(range(to_micros(clock()) + 1, to_micros(clock()) + 11))


async def test_a_failed_write_rolls_back_and_does_not_notify(
    database_url: str, opened: list[SpannerKingdomStore]
) -> None:
    store = open_store(database_url, opened, ManualClock(datetime(2030, 1, 1, tzinfo=UTC)))
    before = store.changes.version

    def fail(tx: SpannerWriteTx) -> None:
        rows.insert(tx, "duchies", duchy_id="d", position=0, active_start_time_us=0)
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        await store.write(fail)
    assert store.changes.version == before
    assert await store.read(lambda s: rows.select_rows(s, "duchies")) == []
    first = await store.write(lambda tx: tx.now_us)
    assert first == to_micros(datetime(2030, 1, 1, tzinfo=UTC))  # the failed one took no time
    assert store.changes.version == before + 1


async def test_a_writer_reads_back_exactly_what_its_commit_produced(
    database_url: str, opened: list[SpannerKingdomStore]
) -> None:
    clock = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    store = open_store(database_url, opened, clock)

    def register(tx: SpannerWriteTx) -> int:
        rows.insert(
            tx,
            "certificates",
            certificate_id=7,
            owner_kind="DUCHY",
            owner_id="worker1",
            subject_key_identifier=bytes(range(256)),
            x509_der=b"\x00der\xff",
            not_valid_before_us=1,
            not_valid_after_us=2,
            revocation_state="NONE",
            create_time_us=tx.now_us,
            update_time_us=tx.now_us,
        )
        return 7

    written = await store.write_then_read(register, reads.certificate)
    assert written is not None
    assert written.subject_key_identifier == bytes(range(256))
    assert written.x509_der == b"\x00der\xff"
    assert written.update_time_us == to_micros(clock())

    def revoke(tx: SpannerWriteTx) -> int:
        rows.update(
            tx,
            "certificates",
            certificate_id=7,
            revocation_state="REVOKED",
            update_time_us=tx.now_us,
        )
        return 7

    revoked = await store.write_then_read(revoke, reads.certificate)
    assert revoked is not None
    assert (revoked.revocation_state, revoked.update_time_us) == (
        "REVOKED",
        written.update_time_us + 1,
    )
