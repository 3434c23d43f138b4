"""`cmms duchy internal-api`: the internal services over the computations database."""

from __future__ import annotations

from cmms.api.internal.duchy.v1 import (
    computation_stats_service_pb2,
    computation_stats_service_pb2_grpc,
    computations_service_pb2,
    computations_service_pb2_grpc,
    continuation_tokens_service_pb2,
    continuation_tokens_service_pb2_grpc,
)
from cmms.common.grpc import AuthorizationPolicy, SecureServer, ServiceBinding, only
from cmms.duchy.db import open_duchy_database, upgrade_duchy_database
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.internal_api.blob_cleanup import BlobCleanup
from cmms.duchy.internal_api.computation_stats import ComputationStatsServicer
from cmms.duchy.internal_api.computations import ComputationsServicer
from cmms.duchy.internal_api.continuation_tokens import ContinuationTokensServicer
from cmms.duchy.service_names import service_name
from cmms.duchy.settings import InternalApiSettings
from cmms.storage import open_blob_store

COMPUTATIONS = service_name(computations_service_pb2, "Computations")
COMPUTATION_STATS = service_name(computation_stats_service_pb2, "ComputationStats")
CONTINUATION_TOKENS = service_name(continuation_tokens_service_pb2, "ContinuationTokens")


async def build_internal_api(settings: InternalApiSettings) -> DuchyDeployable:
    if settings.migrate:
        await upgrade_duchy_database(settings.database_url)
    database = open_duchy_database(settings.database_url)
    store = open_blob_store(settings.blob_storage_url)
    bind = ServiceBinding.for_servicer
    services = [
        bind(
            COMPUTATIONS,
            computations_service_pb2_grpc.add_ComputationsServicer_to_server,
            ComputationsServicer(database.computations, BlobCleanup(store)),
        ),
        bind(
            COMPUTATION_STATS,
            computation_stats_service_pb2_grpc.add_ComputationStatsServicer_to_server,
            ComputationStatsServicer(database.stats),
        ),
        bind(
            CONTINUATION_TOKENS,
            continuation_tokens_service_pb2_grpc.add_ContinuationTokensServicer_to_server,
            ContinuationTokensServicer(database.continuation_tokens),
        ),
    ]
    own_components = only(settings.duchy)
    policy = AuthorizationPolicy(
        {
            COMPUTATIONS: own_components,
            COMPUTATION_STATS: own_components,
            CONTINUATION_TOKENS: own_components,
        }
    )
    server = SecureServer(
        settings.server_options(f"{settings.duchy_name}-internal-api"),
        settings.server_tls(),
        services,
        policy,
    )
    return DuchyDeployable(server, [database.close, store.close])
