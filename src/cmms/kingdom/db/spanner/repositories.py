"""Opening the Kingdom's repositories on a Spanner database."""

from __future__ import annotations

from cmms.common.spanner.connection import open_spanner
from cmms.common.spanner.url import SpannerUrl
from cmms.kingdom.config import KingdomConfig
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.db.spanner.certificates import SpannerCertificateRepository
from cmms.kingdom.db.spanner.computations import SpannerComputationRepository
from cmms.kingdom.db.spanner.event_groups import SpannerEventGroupRepository
from cmms.kingdom.db.spanner.log_entries import SpannerLogEntryRepository
from cmms.kingdom.db.spanner.measurements import SpannerMeasurementRepository
from cmms.kingdom.db.spanner.migrate import upgrade_spanner_async
from cmms.kingdom.db.spanner.participants import SpannerParticipantRepository
from cmms.kingdom.db.spanner.parties import SpannerPartyRepository
from cmms.kingdom.db.spanner.requisitions import SpannerRequisitionRepository
from cmms.kingdom.db.spanner.store import SpannerKingdomStore
from cmms.kingdom.ids import IdGenerator
from cmms.kingdom.timestamps import Clock


def spanner_repositories(store: SpannerKingdomStore, config: KingdomConfig) -> KingdomRepositories:
    """The Spanner repositories over `store`; `close` closes its client."""

    async def close() -> None:
        store.close()

    return KingdomRepositories(
        config=config,
        changes=store.changes,
        certificates=SpannerCertificateRepository(store),
        parties=SpannerPartyRepository(store),
        event_groups=SpannerEventGroupRepository(store),
        measurements=SpannerMeasurementRepository(store, config),
        requisitions=SpannerRequisitionRepository(store),
        participants=SpannerParticipantRepository(store),
        computations=SpannerComputationRepository(store),
        log_entries=SpannerLogEntryRepository(store),
        _close=close,
    )


async def open_spanner_repositories(
    url: str, config: KingdomConfig, *, migrate: bool, clock: Clock, new_id: IdGenerator
) -> KingdomRepositories:
    """Repositories on the database at `url` (created and migrated first unless told not to)."""
    parsed = SpannerUrl.parse(url)
    if migrate:
        await upgrade_spanner_async(url)
    store = SpannerKingdomStore(open_spanner(parsed), clock=clock, new_id=new_id)
    return spanner_repositories(store, config)
