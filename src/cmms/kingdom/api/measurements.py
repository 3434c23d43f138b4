"""`Measurements`: Create (validation of §3.4, request_id idempotency), Get, Cancel, List."""

from __future__ import annotations

from typing import Any

from cmms.api.public.v1 import measurements_pb2, measurements_pb2_grpc
from cmms.common.identity import PrincipalKind, PrincipalProvider, current_principal
from cmms.kingdom import names
from cmms.kingdom.api.caller import require
from cmms.kingdom.api.measurement_validation import validate_create_request
from cmms.kingdom.api.views import INTERNAL_STATES_OF_PUBLIC, measurement_message
from cmms.kingdom.db.records import MeasurementState
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.errors import invalid_argument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


class MeasurementsServicer(measurements_pb2_grpc.MeasurementsServicer):
    def __init__(
        self,
        repositories: KingdomRepositories,
        *,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._repositories = repositories
        self._principal = principal_provider

    def _measurement(self, name: str) -> tuple[str, int]:
        parsed = names.parse_measurement(name)
        if parsed is None:
            raise invalid_argument(f"bad measurement name {name!r}")
        require(self._principal, PrincipalKind.MEASUREMENT_CONSUMER, parsed[0])
        return parsed

    async def CreateMeasurement(
        self, request: measurements_pb2.CreateMeasurementRequest, context: Any
    ) -> measurements_pb2.Measurement:
        mc_id = names.parse_measurement_consumer(request.parent)
        if mc_id is None:
            raise invalid_argument(f"bad parent {request.parent!r}")
        require(self._principal, PrincipalKind.MEASUREMENT_CONSUMER, mc_id)
        new = validate_create_request(mc_id, request)
        return measurement_message(await self._repositories.measurements.create(new))

    async def GetMeasurement(
        self, request: measurements_pb2.GetMeasurementRequest, context: Any
    ) -> measurements_pb2.Measurement:
        mc_id, measurement_id = self._measurement(request.name)
        return measurement_message(await self._repositories.measurements.get(mc_id, measurement_id))

    async def CancelMeasurement(
        self, request: measurements_pb2.CancelMeasurementRequest, context: Any
    ) -> measurements_pb2.Measurement:
        mc_id, measurement_id = self._measurement(request.name)
        snapshot = await self._repositories.measurements.cancel(mc_id, measurement_id, request.etag)
        return measurement_message(snapshot)

    async def ListMeasurements(
        self, request: measurements_pb2.ListMeasurementsRequest, context: Any
    ) -> measurements_pb2.ListMeasurementsResponse:
        mc_id = names.parse_measurement_consumer(request.parent)
        if mc_id is None:
            raise invalid_argument(f"bad parent {request.parent!r}")
        require(self._principal, PrincipalKind.MEASUREMENT_CONSUMER, mc_id)
        if request.page_size < 0:
            raise invalid_argument("page_size must not be negative")
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        states: set[MeasurementState] = set()
        for public in request.filter.states:
            states |= INTERNAL_STATES_OF_PUBLIC.get(public, frozenset())
        page = await self._repositories.measurements.list_page(
            mc_id, states, page_size, request.page_token
        )
        return measurements_pb2.ListMeasurementsResponse(
            measurements=[measurement_message(s) for s in page.items],
            next_page_token=page.next_page_token,
        )
