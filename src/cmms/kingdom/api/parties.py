"""`MeasurementConsumers.Get`, `DataProviders.Get` and `ReplaceDataProviderCapabilities`."""

from __future__ import annotations

from typing import Any

from cmms.api.public.v1 import (
    data_providers_pb2,
    data_providers_pb2_grpc,
    measurement_consumers_pb2,
    measurement_consumers_pb2_grpc,
)
from cmms.common.identity import PrincipalKind, PrincipalProvider, current_principal
from cmms.kingdom import names
from cmms.kingdom.api.caller import require
from cmms.kingdom.api.views import data_provider_message, measurement_consumer_message
from cmms.kingdom.db.records import Capabilities, CertificateRecord
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.errors import invalid_argument


async def _certificate(
    repositories: KingdomRepositories, certificate_id: int | None
) -> CertificateRecord | None:
    if certificate_id is None:
        return None
    return await repositories.certificates.find(certificate_id)


class MeasurementConsumersServicer(measurement_consumers_pb2_grpc.MeasurementConsumersServicer):
    def __init__(
        self,
        repositories: KingdomRepositories,
        *,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._repositories = repositories
        self._principal = principal_provider

    async def GetMeasurementConsumer(
        self, request: measurement_consumers_pb2.GetMeasurementConsumerRequest, context: Any
    ) -> measurement_consumers_pb2.MeasurementConsumer:
        self._principal()
        mc_id = names.parse_measurement_consumer(request.name)
        if mc_id is None:
            raise invalid_argument(f"bad measurement consumer name {request.name!r}")
        record = await self._repositories.parties.get_measurement_consumer(mc_id)
        certificate = await _certificate(self._repositories, record.certificate_id)
        return measurement_consumer_message(record, certificate)


class DataProvidersServicer(data_providers_pb2_grpc.DataProvidersServicer):
    def __init__(
        self,
        repositories: KingdomRepositories,
        *,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._repositories = repositories
        self._principal = principal_provider

    async def GetDataProvider(
        self, request: data_providers_pb2.GetDataProviderRequest, context: Any
    ) -> data_providers_pb2.DataProvider:
        self._principal()
        dp_id = names.parse_data_provider(request.name)
        if dp_id is None:
            raise invalid_argument(f"bad data provider name {request.name!r}")
        record = await self._repositories.parties.get_data_provider(dp_id)
        certificate = await _certificate(self._repositories, record.certificate_id)
        return data_provider_message(record, certificate)

    async def ReplaceDataProviderCapabilities(
        self, request: data_providers_pb2.ReplaceDataProviderCapabilitiesRequest, context: Any
    ) -> data_providers_pb2.DataProvider:
        dp_id = names.parse_data_provider(request.name)
        if dp_id is None:
            raise invalid_argument(f"bad data provider name {request.name!r}")
        require(self._principal, PrincipalKind.DATA_PROVIDER, dp_id)
        caps = request.capabilities
        record = await self._repositories.parties.replace_capabilities(
            dp_id,
            Capabilities(
                hmss_supported=caps.honest_majority_share_shuffle_supported,
                trustee_supported=caps.trus_tee_supported,
                noise_none_supported=caps.noise_mechanism_none_supported,
                noise_dtl_supported=caps.noise_mechanism_deterministic_truncated_laplace_supported,
            ),
        )
        certificate = await _certificate(self._repositories, record.certificate_id)
        return data_provider_message(record, certificate)
