"""`cmms duchy async-computation-control`: the internal AsyncComputationControl server."""

from __future__ import annotations

from cmms.api.internal.duchy.v1 import (
    async_computation_control_service_pb2,
    async_computation_control_service_pb2_grpc,
)
from cmms.common.grpc import AuthorizationPolicy, SecureServer, ServiceBinding, only
from cmms.duchy.control.async_control import AsyncComputationControlServicer, Backoff
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.internal_client import IDEMPOTENT_METHODS, InternalComputationsClient
from cmms.duchy.service_names import service_name
from cmms.duchy.settings import AsyncComputationControlSettings

ASYNC_COMPUTATION_CONTROL = service_name(
    async_computation_control_service_pb2, "AsyncComputationControl"
)


def build_async_computation_control(settings: AsyncComputationControlSettings) -> DuchyDeployable:
    channel = settings.internal_api_channel(IDEMPOTENT_METHODS)
    servicer = AsyncComputationControlServicer(
        InternalComputationsClient(channel, settings.internal_api_deadline_seconds),
        backoff=Backoff(
            max_attempts=settings.max_advance_attempts,
            initial_seconds=settings.advance_initial_backoff_seconds,
        ),
    )
    server = SecureServer(
        settings.server_options(f"{settings.duchy_name}-async-computation-control"),
        settings.server_tls(),
        [
            ServiceBinding.for_servicer(
                ASYNC_COMPUTATION_CONTROL,
                async_computation_control_service_pb2_grpc.add_AsyncComputationControlServicer_to_server,
                servicer,
            )
        ],
        # Only this duchy's computation-control server calls it.
        AuthorizationPolicy({ASYNC_COMPUTATION_CONTROL: only(settings.duchy)}),
    )
    return DuchyDeployable(server, [channel.close])
