"""A whole system on loopback: a Kingdom, three duchies and three EDP simulators.

`LocalSystem.start()` prepares the workdir (development PKI, Kingdom config seeded into its
database, protocols setup config, KMS keys), picks free ports and starts every process under a
`Supervisor` in waves, waiting until each wave is healthy:

1. the Kingdom and each duchy's internal API (the others call them);
2. each duchy's async computation control, computation control, requisition fulfillment,
   herald and mill scheduler (which launches `cmms duchy mill` jobs as child processes);
3. the EDP simulators (ready once every consumer sees their event groups).

Then it writes `endpoints.json`. A workdir can be reused: the PKI, keys and databases stay, and
seeding is idempotent. `stop()` stops every process, newest wave first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from cmms.clients.endpoints import DuchyEndpoints, Endpoints, KingdomEndpoints
from cmms.common.errors import UserError
from cmms.common.kms import create_local_kek_file
from cmms.common.pki import PkiSpec, generate_pki
from cmms.deploy.local.configs import (
    DUCHIES,
    kingdom_config,
    kingdom_config_json,
    protocols_setup_config,
)
from cmms.deploy.local.layout import LocalLayout
from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.ports import PortPool
from cmms.deploy.local.processes import (
    DUCHY_PORT_COUNT,
    KINGDOM_PORT_COUNT,
    DuchyPorts,
    KingdomPorts,
    Topology,
    duchy_server_specs,
    edp_spec,
    herald_spec,
    internal_api_spec,
    kingdom_spec,
    mill_scheduler_spec,
    target,
)
from cmms.deploy.local.routing import MEASUREMENT_CONSUMERS
from cmms.deploy.local.storage import (
    SQLITE,
    database_urls,
    duchy_blob_urls,
    ensure_postgres_databases,
    is_postgres_url,
    with_duchy_databases,
)
from cmms.deploy.local.supervisor import Supervisor
from cmms.duchy.herald.config import dump_protocols_setup_config
from cmms.kingdom.config import KingdomConfig

DATA_PROVIDERS = ("edp1", "edp2", "edp3")

Report = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


class LocalSystem:
    """Start, watch and stop a local system; usable as an async context manager."""

    def __init__(self, options: LocalOptions, *, report: Report = _quiet) -> None:
        self.options = options
        self.layout = LocalLayout(options.workdir)
        self.supervisor = Supervisor(
            self.layout.logs, stop_grace_seconds=options.stop_grace_seconds
        )
        self._report = report
        self._endpoints: Endpoints | None = None
        self._topology: Topology | None = None

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise RuntimeError("the local system has not started")
        return self._endpoints

    @property
    def topology(self) -> Topology:
        if self._topology is None:
            raise RuntimeError("the local system has not started")
        return self._topology

    async def start(self) -> Endpoints:
        """Start everything and write `endpoints.json`; on any failure, stop what started."""
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> Endpoints:
        layout, options = self.layout, self.options
        layout.root.mkdir(parents=True, exist_ok=True)
        # A stale file would send clients to the ports of a system that is gone.
        layout.endpoints.unlink(missing_ok=True)
        self._prepare_pki()
        config = kingdom_config(noise=options.noise)
        layout.kingdom_config.write_text(kingdom_config_json(config), encoding="utf-8")
        layout.protocols_setup_config.write_text(
            dump_protocols_setup_config(protocols_setup_config()), encoding="utf-8"
        )
        self._prepare_keys()
        databases = with_duchy_databases(
            database_urls(options.database, layout.databases, ("kingdom", *DUCHIES)),
            options.duchy_databases,
            DUCHIES,
        )
        if options.database == SQLITE:
            layout.databases.mkdir(parents=True, exist_ok=True)
        postgres = [url for url in databases.values() if is_postgres_url(url)]
        if postgres:
            await asyncio.to_thread(ensure_postgres_databases, postgres)
        for duchy_id, url in options.duchy_databases.items():
            # Spanner databases are created by the internal API's migration (`--migrate`).
            self._report(f"{duchy_id}: database {url}")
        self._report("seeding the Kingdom")
        certificates = await _seed_kingdom(databases["kingdom"], config, layout)
        pool = PortPool(KINGDOM_PORT_COUNT + DUCHY_PORT_COUNT * len(DUCHIES))
        topology = Topology(
            layout=layout,
            options=options,
            kingdom=KingdomPorts.take(pool),
            duchies={d: DuchyPorts.take(pool) for d in DUCHIES},
            data_providers=DATA_PROVIDERS,
            database_urls=databases,
            blob_urls=duchy_blob_urls(options.blob_storage, layout.blobs, DUCHIES),
            duchy_certificates=certificates,
        )
        self._topology = topology
        timeout = options.startup_timeout_seconds
        supervisor = self.supervisor

        self._report("starting the Kingdom and the duchies' internal APIs")
        await supervisor.start(
            [kingdom_spec(topology), *(internal_api_spec(topology, d) for d in DUCHIES)]
        )
        await supervisor.wait_healthy(timeout)

        self._report("starting the duchies' servers, heralds and mill schedulers")
        wave = []
        for duchy_id in DUCHIES:
            wave += duchy_server_specs(topology, duchy_id)
            wave += [herald_spec(topology, duchy_id), mill_scheduler_spec(topology, duchy_id)]
        await supervisor.start(wave)
        await supervisor.wait_healthy(timeout)

        self._report("starting the EDP simulators")
        await supervisor.start([edp_spec(topology, e) for e in DATA_PROVIDERS])
        await supervisor.wait_healthy(timeout)

        endpoints_of(topology).write(layout.endpoints)
        # Read back as clients read it: the PKI directory resolved against the file.
        endpoints = Endpoints.load(layout.endpoints)
        self._endpoints = endpoints
        self._report(f"ready: {layout.endpoints}")
        return endpoints

    def _prepare_pki(self) -> None:
        layout = self.layout
        spec = PkiSpec(
            duchies=DUCHIES,
            data_providers=DATA_PROVIDERS,
            measurement_consumers=MEASUREMENT_CONSUMERS,
        )
        if layout.pki.trust_config.is_file():
            known = {p.resource_name for p in layout.pki.load_trust_config().principals}
            wanted = {p.resource_name for p in spec.principals()}
            if not wanted <= known:
                raise UserError(
                    f"{layout.pki_dir} is a PKI for other parties; use a fresh --workdir"
                )
            return
        self._report(f"generating a development PKI in {layout.pki_dir}")
        generate_pki(layout.pki_dir, spec)

    def _prepare_keys(self) -> None:
        layout = self.layout
        for path in (*(layout.duchy_kek(d) for d in DUCHIES), layout.trustee_kek):
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                create_local_kek_file(path)

    async def stop(self) -> None:
        """Stop every process (newest first); the workdir stays."""
        await self.supervisor.stop()

    async def __aenter__(self) -> LocalSystem:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def _seed_kingdom(
    database_url: str, config: KingdomConfig, layout: LocalLayout
) -> dict[str, str]:
    """Register every party of the PKI; returns each duchy's certificate resource name."""
    from cmms.kingdom.db.repository import open_repositories
    from cmms.kingdom.seeding import seed_from_pki

    repositories = await open_repositories(database_url, config)
    try:
        report = await seed_from_pki(repositories, layout.pki)
    finally:
        await repositories.close()
    certificates = {}
    for duchy_id in DUCHIES:
        names = [c for c in report.certificates if c.startswith(f"duchies/{duchy_id}/")]
        if len(names) != 1:
            raise UserError(f"seeding found {len(names)} certificates of duchy {duchy_id}")
        certificates[duchy_id] = names[0]
    return certificates


def endpoints_of(topology: Topology) -> Endpoints:
    """What clients need: every target, the PKI (relative to the workdir) and the party ids."""
    return Endpoints(
        pki_dir=Path(topology.layout.pki_dir.name),
        kingdom=KingdomEndpoints(
            public_api=topology.kingdom_public, system_api=topology.kingdom_system
        ),
        duchies={
            duchy_id: DuchyEndpoints(
                requisition_fulfillment=target(ports.fulfillment.grpc),
                computation_control=target(ports.computation_control.grpc),
                internal_api=target(ports.internal_api.grpc),
            )
            for duchy_id, ports in topology.duchies.items()
        },
        measurement_consumers=list(MEASUREMENT_CONSUMERS),
        data_providers=list(topology.data_providers),
    )
