"""`cmms duchy requisition-fulfillment`: the public RequisitionFulfillment server for EDPs."""

from __future__ import annotations

from cmms.api.public.v1 import requisition_fulfillment_pb2, requisition_fulfillment_pb2_grpc
from cmms.common.grpc import AuthorizationPolicy, SecureServer, ServiceBinding, allow
from cmms.common.identity import PrincipalKind
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.fulfillment.kingdom_client import GrpcKingdomRequisitions, KingdomRequisitions
from cmms.duchy.fulfillment.service import RequisitionFulfillmentServicer
from cmms.duchy.internal_client import IDEMPOTENT_METHODS, InternalComputationsClient
from cmms.duchy.service_names import service_name
from cmms.duchy.settings import RequisitionFulfillmentSettings
from cmms.storage import open_blob_store, requisition_store

REQUISITION_FULFILLMENT = service_name(requisition_fulfillment_pb2, "RequisitionFulfillment")
# Data providers only; the servicer checks the caller owns the named requisition.
POLICY = AuthorizationPolicy({REQUISITION_FULFILLMENT: allow(PrincipalKind.DATA_PROVIDER)})


def build_requisition_fulfillment(
    settings: RequisitionFulfillmentSettings, kingdom: KingdomRequisitions | None = None
) -> DuchyDeployable:
    """The server; `kingdom` replaces the gRPC Kingdom client (tests)."""
    store = open_blob_store(settings.blob_storage_url)
    internal = settings.internal_api_channel(IDEMPOTENT_METHODS)
    closers = [store.close, internal.close]
    if kingdom is None:
        kingdom_channel = settings.kingdom_channel()
        closers.append(kingdom_channel.close)
        kingdom = GrpcKingdomRequisitions(kingdom_channel, settings.kingdom_deadline_seconds)
    servicer = RequisitionFulfillmentServicer(
        settings.duchy_name,
        InternalComputationsClient(internal, settings.internal_api_deadline_seconds),
        kingdom,
        requisition_store(store),
        max_payload_bytes=settings.max_payload_bytes,
    )
    server = SecureServer(
        settings.server_options(f"{settings.duchy_name}-requisition-fulfillment"),
        settings.server_tls(),
        [
            ServiceBinding.for_servicer(
                REQUISITION_FULFILLMENT,
                requisition_fulfillment_pb2_grpc.add_RequisitionFulfillmentServicer_to_server,
                servicer,
            )
        ],
        POLICY,
    )
    return DuchyDeployable(server, closers)
