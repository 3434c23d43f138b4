"""`Requisitions` (EDP-facing): List, Get, Refuse, FulfillDirect (§3.5)."""

from __future__ import annotations

from typing import Any

from cmms.api.public.v1 import requisitions_pb2, requisitions_pb2_grpc
from cmms.common.identity import PrincipalKind, PrincipalProvider, current_principal
from cmms.kingdom import names
from cmms.kingdom.api.caller import require
from cmms.kingdom.api.views import (
    INTERNAL_STATES_OF_PUBLIC,
    SIGNED_MESSAGE_TYPE_URL,
    requisition_message,
)
from cmms.kingdom.db.records import MeasurementState, RequisitionState
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.db.requisitions import Fulfilment, RequisitionView
from cmms.kingdom.errors import invalid_argument
from cmms.kingdom.ids import decode_external_id, encode_external_id

Requisition = requisitions_pb2.Requisition
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 500


def _message(view: RequisitionView) -> Requisition:
    return requisition_message(view.snapshot, view.requisition)


class RequisitionsServicer(requisitions_pb2_grpc.RequisitionsServicer):
    def __init__(
        self,
        repositories: KingdomRepositories,
        *,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._repositories = repositories
        self._principal = principal_provider

    def _own(self, name: str) -> tuple[str, int]:
        parsed = names.parse_requisition(name)
        if parsed is None:
            raise invalid_argument(f"bad requisition name {name!r}")
        require(self._principal, PrincipalKind.DATA_PROVIDER, parsed[0])
        return parsed

    async def ListRequisitions(
        self, request: requisitions_pb2.ListRequisitionsRequest, context: Any
    ) -> requisitions_pb2.ListRequisitionsResponse:
        if request.page_size < 0:
            raise invalid_argument("page_size must not be negative")
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if Requisition.STATE_UNSPECIFIED in request.filter.states:
            raise invalid_argument("filter.states may not hold STATE_UNSPECIFIED")
        states = {RequisitionState(Requisition.State.Name(s)) for s in request.filter.states}
        measurement_states: set[MeasurementState] = set()
        for public in request.filter.measurement_states:
            measurement_states |= INTERNAL_STATES_OF_PUBLIC.get(public, frozenset())
        dp_id = names.parse_data_provider(request.parent)
        if dp_id is not None:
            require(self._principal, PrincipalKind.DATA_PROVIDER, dp_id)
            after = 0
            if request.page_token:
                try:
                    after = decode_external_id(request.page_token)
                except ValueError as exc:
                    raise invalid_argument("malformed page_token") from exc
            views, last = await self._repositories.requisitions.list_for_data_provider(
                dp_id, states, measurement_states, page_size=page_size, after_requisition_id=after
            )
            return requisitions_pb2.ListRequisitionsResponse(
                requisitions=[_message(v) for v in views],
                next_page_token="" if last is None else encode_external_id(last),
            )
        measurement = names.parse_measurement(request.parent)
        if measurement is None:
            raise invalid_argument(f"bad parent {request.parent!r}")
        require(self._principal, PrincipalKind.MEASUREMENT_CONSUMER, measurement[0])
        views = await self._repositories.requisitions.list_for_measurement(*measurement)
        views = [v for v in views if not states or v.requisition.requisition_state in states]
        return requisitions_pb2.ListRequisitionsResponse(requisitions=[_message(v) for v in views])

    async def GetRequisition(
        self, request: requisitions_pb2.GetRequisitionRequest, context: Any
    ) -> Requisition:
        dp_id, requisition_id = self._own(request.name)
        return _message(await self._repositories.requisitions.get(dp_id, requisition_id))

    async def RefuseRequisition(
        self, request: requisitions_pb2.RefuseRequisitionRequest, context: Any
    ) -> Requisition:
        dp_id, requisition_id = self._own(request.name)
        justification = request.refusal.justification
        if justification == Requisition.Refusal.JUSTIFICATION_UNSPECIFIED:
            raise invalid_argument("refusal.justification is required")
        view = await self._repositories.requisitions.refuse(
            dp_id,
            requisition_id,
            Requisition.Refusal.Justification.Name(justification),
            request.refusal.message,
            request.etag,
        )
        return _message(view)

    async def FulfillDirectRequisition(
        self, request: requisitions_pb2.FulfillDirectRequisitionRequest, context: Any
    ) -> requisitions_pb2.FulfillDirectRequisitionResponse:
        dp_id, requisition_id = self._own(request.name)
        if request.nonce == 0:
            raise invalid_argument("nonce must be non-zero")
        if request.encrypted_result.type_url != SIGNED_MESSAGE_TYPE_URL:
            raise invalid_argument("encrypted_result must be an encrypted SignedMessage")
        certificate_id = None
        if request.certificate:
            key = names.parse_certificate(request.certificate)
            if key is None or key.owner != names.Owner(names.OwnerKind.DATA_PROVIDER, dp_id):
                raise invalid_argument("certificate must be one of this data provider's")
            certificate_id = key.certificate_id
        await self._repositories.requisitions.fulfill_direct(
            dp_id,
            requisition_id,
            Fulfilment(
                nonce=request.nonce,
                fulfillment_context=request.fulfillment_context.SerializeToString(),
                etag=request.etag,
            ),
            request.encrypted_result.ciphertext,
            certificate_id,
        )
        return requisitions_pb2.FulfillDirectRequisitionResponse(state=Requisition.FULFILLED)
