"""System `Requisitions.FulfillRequisition` (§2.5), called by the duchy that got the EDP's data."""

from __future__ import annotations

from typing import Any

from cmms.api.system.v1 import computation_pb2, requisitions_pb2, requisitions_pb2_grpc
from cmms.common.identity import PrincipalProvider, current_principal
from cmms.kingdom import names
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.db.requisitions import Fulfilment
from cmms.kingdom.errors import invalid_argument
from cmms.kingdom.system.caller import calling_duchy
from cmms.kingdom.system.views import requisition_message


class SystemRequisitionsServicer(requisitions_pb2_grpc.RequisitionsServicer):
    def __init__(
        self,
        repositories: KingdomRepositories,
        *,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._repositories = repositories
        self._principal = principal_provider

    async def FulfillRequisition(
        self, request: requisitions_pb2.FulfillRequisitionRequest, context: Any
    ) -> computation_pb2.Requisition:
        duchy_id = calling_duchy(self._principal)
        parsed = names.parse_system_requisition(request.name)
        if parsed is None:
            raise invalid_argument(f"bad requisition name {request.name!r}")
        if request.nonce == 0:
            raise invalid_argument("nonce must be non-zero")
        computation_id, requisition_id = parsed
        view = await self._repositories.requisitions.fulfill_for_computation(
            duchy_id,
            computation_id,
            requisition_id,
            Fulfilment(
                nonce=request.nonce,
                fulfillment_context=request.fulfillment_context.SerializeToString(),
                etag=request.etag,
            ),
        )
        return requisition_message(computation_id, view.requisition)
