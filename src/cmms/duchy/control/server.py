"""`cmms duchy computation-control`: the peer-facing ComputationControl server."""

from __future__ import annotations

from cmms.api.system.v1 import computation_control_pb2, computation_control_pb2_grpc
from cmms.common.grpc import AuthorizationPolicy, SecureServer, ServiceBinding, allow
from cmms.common.identity import PrincipalKind
from cmms.duchy.control.async_client import AsyncControlClient
from cmms.duchy.control.computation_control import ComputationControlServicer
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.internal_client import IDEMPOTENT_METHODS, InternalComputationsClient
from cmms.duchy.service_names import service_name
from cmms.duchy.settings import ComputationControlSettings
from cmms.storage import computation_store, open_blob_store

COMPUTATION_CONTROL = service_name(computation_control_pb2, "ComputationControl")
# Any duchy may call; the servicer admits only participants of the named computation.
POLICY = AuthorizationPolicy({COMPUTATION_CONTROL: allow(PrincipalKind.DUCHY)})


def build_computation_control(settings: ComputationControlSettings) -> DuchyDeployable:
    store = open_blob_store(settings.blob_storage_url)
    internal = settings.internal_api_channel(IDEMPOTENT_METHODS)
    async_channel = settings.async_channel()
    servicer = ComputationControlServicer(
        settings.duchy_name,
        InternalComputationsClient(internal, settings.internal_api_deadline_seconds),
        AsyncControlClient(async_channel, settings.async_computation_control_deadline_seconds),
        computation_store(store),
        max_payload_bytes=settings.max_payload_bytes,
    )
    server = SecureServer(
        settings.server_options(f"{settings.duchy_name}-computation-control"),
        settings.server_tls(),
        [
            ServiceBinding.for_servicer(
                COMPUTATION_CONTROL,
                computation_control_pb2_grpc.add_ComputationControlServicer_to_server,
                servicer,
            )
        ],
        POLICY,
    )
    return DuchyDeployable(server, [store.close, internal.close, async_channel.close])
