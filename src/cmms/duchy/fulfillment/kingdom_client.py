"""Telling the Kingdom a requisition was fulfilled here (system `Requisitions.FulfillRequisition`)."""

from __future__ import annotations

from typing import Protocol

import grpc

from cmms.api.public.v1 import common_pb2
from cmms.api.system.v1 import requisitions_pb2, requisitions_pb2_grpc
from cmms.duchy.internal_client import call


class KingdomRequisitions(Protocol):
    async def fulfill_requisition(
        self,
        global_computation_id: str,
        requisition_id: str,
        nonce: int,
        etag: str,
        fulfillment_context: common_pb2.FulfillmentContext | None,
    ) -> None:
        """Report the fulfilment; a failure raises a StatusError with the Kingdom's code."""


class GrpcKingdomRequisitions:
    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._stub = requisitions_pb2_grpc.RequisitionsStub(channel)
        self._deadline = deadline_seconds

    async def fulfill_requisition(
        self,
        global_computation_id: str,
        requisition_id: str,
        nonce: int,
        etag: str,
        fulfillment_context: common_pb2.FulfillmentContext | None,
    ) -> None:
        request = requisitions_pb2.FulfillRequisitionRequest(
            name=f"computations/{global_computation_id}/requisitions/{requisition_id}",
            nonce=nonce,
            etag=etag,
        )
        if fulfillment_context is not None:
            request.fulfillment_context.CopyFrom(fulfillment_context)
        await call(self._stub.FulfillRequisition(request, timeout=self._deadline))
