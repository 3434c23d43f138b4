"""The Kingdom process: public and system API servers over mTLS, plus the TTL job.

Both servers use the shared bootstrap (`cmms.common.grpc.SecureServer`): every call is
authenticated from the client certificate's AKID and authorised per service here; finer
ownership checks live in the servicers. Health and metrics ports are on the public server.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import timedelta

from cmms.api.public.v1 import (
    certificates_pb2,
    certificates_pb2_grpc,
    data_providers_pb2,
    data_providers_pb2_grpc,
    event_groups_pb2,
    event_groups_pb2_grpc,
    measurement_consumers_pb2,
    measurement_consumers_pb2_grpc,
    measurements_pb2,
    measurements_pb2_grpc,
    requisitions_pb2,
    requisitions_pb2_grpc,
)
from cmms.api.system.v1 import (
    computation_log_entries_pb2,
    computation_log_entries_pb2_grpc,
    computation_participants_pb2,
    computation_participants_pb2_grpc,
    computations_pb2,
    computations_pb2_grpc,
)
from cmms.api.system.v1 import requisitions_pb2 as system_requisitions_pb2
from cmms.api.system.v1 import requisitions_pb2_grpc as system_requisitions_pb2_grpc
from cmms.common.grpc import (
    ANY_AUTHENTICATED,
    AuthorizationPolicy,
    BoundPorts,
    SecureServer,
    ServerOptions,
    ServerTls,
    ServiceBinding,
    allow,
)
from cmms.common.identity import PrincipalKind
from cmms.kingdom.api.certificates import CertificatesServicer
from cmms.kingdom.api.event_groups import EventGroupsServicer
from cmms.kingdom.api.measurements import MeasurementsServicer
from cmms.kingdom.api.parties import DataProvidersServicer, MeasurementConsumersServicer
from cmms.kingdom.api.requisitions import RequisitionsServicer
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.jobs.ttl import run_periodically
from cmms.kingdom.system.computations import ComputationsServicer, StreamSettings
from cmms.kingdom.system.log_entries import ComputationLogEntriesServicer
from cmms.kingdom.system.participants import ComputationParticipantsServicer
from cmms.kingdom.system.requisitions import SystemRequisitionsServicer
from cmms.kingdom.timestamps import Clock, system_clock


def _service(module: object, name: str) -> str:
    full_name: str = module.DESCRIPTOR.services_by_name[name].full_name  # type: ignore[attr-defined]
    return full_name


CERTIFICATES = _service(certificates_pb2, "Certificates")
MEASUREMENT_CONSUMERS = _service(measurement_consumers_pb2, "MeasurementConsumers")
DATA_PROVIDERS = _service(data_providers_pb2, "DataProviders")
EVENT_GROUPS = _service(event_groups_pb2, "EventGroups")
MEASUREMENTS = _service(measurements_pb2, "Measurements")
REQUISITIONS = _service(requisitions_pb2, "Requisitions")
COMPUTATIONS = _service(computations_pb2, "Computations")
COMPUTATION_PARTICIPANTS = _service(computation_participants_pb2, "ComputationParticipants")
COMPUTATION_LOG_ENTRIES = _service(computation_log_entries_pb2, "ComputationLogEntries")
SYSTEM_REQUISITIONS = _service(system_requisitions_pb2, "Requisitions")

_CONSUMERS_AND_PROVIDERS = allow(PrincipalKind.MEASUREMENT_CONSUMER, PrincipalKind.DATA_PROVIDER)
PUBLIC_POLICY = AuthorizationPolicy(
    {
        CERTIFICATES: ANY_AUTHENTICATED,
        MEASUREMENT_CONSUMERS: ANY_AUTHENTICATED,
        DATA_PROVIDERS: ANY_AUTHENTICATED,
        EVENT_GROUPS: _CONSUMERS_AND_PROVIDERS,
        MEASUREMENTS: allow(PrincipalKind.MEASUREMENT_CONSUMER),
        REQUISITIONS: _CONSUMERS_AND_PROVIDERS,
    }
)
SYSTEM_POLICY = AuthorizationPolicy(
    {
        name: allow(PrincipalKind.DUCHY)
        for name in (
            COMPUTATIONS,
            COMPUTATION_PARTICIPANTS,
            COMPUTATION_LOG_ENTRIES,
            SYSTEM_REQUISITIONS,
        )
    }
)


def public_services(repositories: KingdomRepositories) -> list[ServiceBinding]:
    bind = ServiceBinding.for_servicer
    return [
        bind(
            CERTIFICATES,
            certificates_pb2_grpc.add_CertificatesServicer_to_server,
            CertificatesServicer(repositories),
        ),
        bind(
            MEASUREMENT_CONSUMERS,
            measurement_consumers_pb2_grpc.add_MeasurementConsumersServicer_to_server,
            MeasurementConsumersServicer(repositories),
        ),
        bind(
            DATA_PROVIDERS,
            data_providers_pb2_grpc.add_DataProvidersServicer_to_server,
            DataProvidersServicer(repositories),
        ),
        bind(
            EVENT_GROUPS,
            event_groups_pb2_grpc.add_EventGroupsServicer_to_server,
            EventGroupsServicer(repositories),
        ),
        bind(
            MEASUREMENTS,
            measurements_pb2_grpc.add_MeasurementsServicer_to_server,
            MeasurementsServicer(repositories),
        ),
        bind(
            REQUISITIONS,
            requisitions_pb2_grpc.add_RequisitionsServicer_to_server,
            RequisitionsServicer(repositories),
        ),
    ]


def system_services(
    repositories: KingdomRepositories, stream: StreamSettings = StreamSettings()
) -> list[ServiceBinding]:
    bind = ServiceBinding.for_servicer
    return [
        bind(
            COMPUTATIONS,
            computations_pb2_grpc.add_ComputationsServicer_to_server,
            ComputationsServicer(repositories, stream=stream),
        ),
        bind(
            COMPUTATION_PARTICIPANTS,
            computation_participants_pb2_grpc.add_ComputationParticipantsServicer_to_server,
            ComputationParticipantsServicer(repositories),
        ),
        bind(
            COMPUTATION_LOG_ENTRIES,
            computation_log_entries_pb2_grpc.add_ComputationLogEntriesServicer_to_server,
            ComputationLogEntriesServicer(repositories),
        ),
        bind(
            SYSTEM_REQUISITIONS,
            system_requisitions_pb2_grpc.add_RequisitionsServicer_to_server,
            SystemRequisitionsServicer(repositories),
        ),
    ]


@dataclass(frozen=True)
class KingdomPorts:
    public: BoundPorts
    system: BoundPorts


class KingdomServer:
    """Both API servers and the TTL job; `start`/`stop` or `async with`."""

    def __init__(
        self,
        repositories: KingdomRepositories,
        tls: ServerTls,
        *,
        host: str = "127.0.0.1",
        public_port: int = 0,
        system_port: int = 0,
        health_port: int | None = 0,
        metrics_port: int | None = 0,
        stream: StreamSettings = StreamSettings(),
        shutdown_grace_seconds: float = 5.0,
        clock: Clock = system_clock,
    ) -> None:
        self._repositories = repositories
        self._clock = clock
        self.public = SecureServer(
            ServerOptions(
                name="kingdom-public",
                host=host,
                port=public_port,
                health_port=health_port,
                http_port=metrics_port,
                shutdown_grace_seconds=shutdown_grace_seconds,
            ),
            tls,
            public_services(repositories),
            PUBLIC_POLICY,
        )
        self.system = SecureServer(
            ServerOptions(
                name="kingdom-system",
                host=host,
                port=system_port,
                health_port=None,
                http_port=None,
                shutdown_grace_seconds=shutdown_grace_seconds,
            ),
            tls,
            system_services(repositories, stream),
            SYSTEM_POLICY,
        )
        self._stop_jobs = asyncio.Event()
        self._ttl_task: asyncio.Task[None] | None = None

    async def start(self) -> KingdomPorts:
        public = await self.public.start()
        system = await self.system.start()
        config = self._repositories.config
        self._stop_jobs.clear()
        self._ttl_task = asyncio.create_task(
            run_periodically(
                self._repositories.measurements,
                timedelta(seconds=config.measurement_ttl_seconds),
                config.ttl_job_period_seconds,
                self._stop_jobs,
                clock=self._clock,
            )
        )
        return KingdomPorts(public, system)

    async def stop(self) -> None:
        self._stop_jobs.set()
        if self._ttl_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._ttl_task
        await self.system.stop()
        await self.public.stop()

    async def wait_for_termination(self) -> None:
        await self.public.wait_for_termination()

    async def __aenter__(self) -> KingdomServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
