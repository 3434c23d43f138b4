"""All Kingdom repositories over one store, and opening a database by URL."""

from __future__ import annotations

from dataclasses import dataclass

from cmms.kingdom.config import KingdomConfig
from cmms.kingdom.db.certificates import CertificateRepository
from cmms.kingdom.db.computations import ComputationRepository
from cmms.kingdom.db.engine import create_kingdom_engine
from cmms.kingdom.db.event_groups import EventGroupRepository
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
    store: KingdomStore
    config: KingdomConfig
    certificates: CertificateRepository
    parties: PartyRepository
    event_groups: EventGroupRepository
    measurements: MeasurementRepository
    requisitions: RequisitionRepository
    participants: ParticipantRepository
    computations: ComputationRepository
    log_entries: LogEntryRepository

    @classmethod
    def over(cls, store: KingdomStore, config: KingdomConfig) -> KingdomRepositories:
        return cls(
            store=store,
            config=config,
            certificates=CertificateRepository(store),
            parties=PartyRepository(store),
            event_groups=EventGroupRepository(store),
            measurements=MeasurementRepository(store, config),
            requisitions=RequisitionRepository(store),
            participants=ParticipantRepository(store),
            computations=ComputationRepository(store),
            log_entries=LogEntryRepository(store),
        )

    async def close(self) -> None:
        await self.store.engine.dispose()


async def open_repositories(
    database_url: str,
    config: KingdomConfig,
    *,
    migrate: bool = True,
    clock: Clock = system_clock,
    new_id: IdGenerator = random_external_id,
) -> KingdomRepositories:
    """Open the database (migrating it to the latest schema unless told not to)."""
    engine = create_kingdom_engine(database_url)
    if migrate:
        await upgrade_engine(engine)
    repositories = KingdomRepositories.over(
        KingdomStore(engine, clock=clock, new_id=new_id), config
    )
    await repositories.parties.sync_duchies(config.duchies)
    return repositories
