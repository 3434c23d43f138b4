"""All Kingdom repositories over one database, and opening a database by URL.

`sqlite:///...` and `postgresql://...` use the SQLAlchemy repositories over a `KingdomStore`;
`spanner://projects/P/instances/I/databases/D` uses the Spanner ones (the `gcp` extra). Either way
callers get the repositories behind the Protocols of `cmms.kingdom.db.interfaces`, plus the
in-process change feed the writers publish to.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cmms.common.spanner.url import is_spanner_url
from cmms.kingdom.config import KingdomConfig
from cmms.kingdom.db.certificates import CertificateRepository
from cmms.kingdom.db.changes import ChangeFeed
from cmms.kingdom.db.computations import ComputationRepository
from cmms.kingdom.db.engine import create_kingdom_engine
from cmms.kingdom.db.event_groups import EventGroupRepository
from cmms.kingdom.db.interfaces import (
    CertificateRepositoryInterface,
    ComputationRepositoryInterface,
    EventGroupRepositoryInterface,
    LogEntryRepositoryInterface,
    MeasurementRepositoryInterface,
    ParticipantRepositoryInterface,
    PartyRepositoryInterface,
    RequisitionRepositoryInterface,
)
from cmms.kingdom.db.log_entries import LogEntryRepository
from cmms.kingdom.db.measurements import MeasurementRepository
from cmms.kingdom.db.migrate import upgrade_engine
from cmms.kingdom.db.participants import ParticipantRepository
from cmms.kingdom.db.parties import PartyRepository
from cmms.kingdom.db.requisitions import RequisitionRepository
from cmms.kingdom.db.store import KingdomStore
from cmms.kingdom.ids import IdGenerator, random_external_id
from cmms.kingdom.timestamps import Clock, system_clock


@dataclass(frozen=True)
class KingdomRepositories:
    config: KingdomConfig
    changes: ChangeFeed
    certificates: CertificateRepositoryInterface
    parties: PartyRepositoryInterface
    event_groups: EventGroupRepositoryInterface
    measurements: MeasurementRepositoryInterface
    requisitions: RequisitionRepositoryInterface
    participants: ParticipantRepositoryInterface
    computations: ComputationRepositoryInterface
    log_entries: LogEntryRepositoryInterface
    _close: Callable[[], Awaitable[None]]

    @classmethod
    def over(cls, store: KingdomStore, config: KingdomConfig) -> KingdomRepositories:
        """The SQLAlchemy repositories over `store`; `close` disposes of its engine."""
        return cls(
            config=config,
            changes=store.changes,
            certificates=CertificateRepository(store),
            parties=PartyRepository(store),
            event_groups=EventGroupRepository(store),
            measurements=MeasurementRepository(store, config),
            requisitions=RequisitionRepository(store),
            participants=ParticipantRepository(store),
            computations=ComputationRepository(store),
            log_entries=LogEntryRepository(store),
            _close=store.engine.dispose,
        )

    async def close(self) -> None:
        await self._close()


async def open_repositories(
    database_url: str,
    config: KingdomConfig,
    *,
    migrate: bool = True,
    clock: Clock = system_clock,
    new_id: IdGenerator = random_external_id,
) -> KingdomRepositories:
    """Open the database (migrating it to the latest schema unless told not to)."""
    if is_spanner_url(database_url):
        # Imported here: the SDK is an optional extra, needed only for spanner:// URLs.
        from cmms.kingdom.db.spanner.repositories import open_spanner_repositories

        repositories = await open_spanner_repositories(
            database_url, config, migrate=migrate, clock=clock, new_id=new_id
        )
    else:
        engine = create_kingdom_engine(database_url)
        if migrate:
            await upgrade_engine(engine)
        repositories = KingdomRepositories.over(
            KingdomStore(engine, clock=clock, new_id=new_id), config
        )
    await repositories.parties.sync_duchies(config.duchies)
    return repositories
