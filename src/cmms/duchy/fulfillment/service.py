"""Public `RequisitionFulfillment.FulfillRequisition`, called by EDPs (duchy_internals §6).

Order: authorise the caller against the requisition name, find the requisition by
(id, fingerprint), verify the nonce and the protocol header, and only then stream the body to the
requisition store, record it locally, tell the Kingdom, and record that the Kingdom knows (the
accepted nonce, in RequisitionDetails.nonce). Nothing is written for a rejected upload.

Once only: a requisition fulfilled here and acknowledged by the Kingdom is refused with
ALREADY_EXISTS, without storing or notifying anything. One recorded here whose notification never
completed (the Kingdom was unreachable, or this process stopped in between) is completed by the
EDP's retry: its stored data is kept as it is, and only the Kingdom is told again, which the
Kingdom answers idempotently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from cmms.api.internal.duchy.v1 import computation_details_pb2, computations_service_pb2
from cmms.api.public.v1 import (
    requisition_fulfillment_pb2,
    requisition_fulfillment_pb2_grpc,
    requisitions_pb2,
)
from cmms.common.grpc import fail
from cmms.common.identity import Principal, PrincipalProvider, current_principal
from cmms.duchy.fulfillment.kingdom_client import KingdomRequisitions
from cmms.duchy.fulfillment.verification import (
    PUBLIC_API_VERSION,
    parse_requisition_name,
    protocol_details,
    sketch_size_error,
    verify_nonce,
)
from cmms.duchy.internal_api.convert import stage_from_proto
from cmms.duchy.internal_client import InternalComputationsClient
from cmms.duchy.upload import BodyRules, body_chunks, store_body
from cmms.storage import BlobStore, RequisitionBlobKey

pb = requisition_fulfillment_pb2
Request = pb.FulfillRequisitionRequest


def _chunk_of(message: Request) -> bytes | None:
    if message.WhichOneof("payload") != "body_chunk":
        return None
    return message.body_chunk.data


class RequisitionFulfillmentServicer(
    requisition_fulfillment_pb2_grpc.RequisitionFulfillmentServicer
):
    def __init__(
        self,
        duchy_id: str,
        computations: InternalComputationsClient,
        kingdom: KingdomRequisitions,
        store: BlobStore,
        *,
        max_payload_bytes: int,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._duchy_id = duchy_id
        self._computations = computations
        self._kingdom = kingdom
        self._store = store
        self._max_payload_bytes = max_payload_bytes
        self._principal = principal_provider

    async def FulfillRequisition(
        self, request_iterator: AsyncIterator[Request], context: Any
    ) -> pb.FulfillRequisitionResponse:
        caller = self._principal()
        first = await anext(aiter(request_iterator), None)
        if first is None:
            fail(grpc.StatusCode.INVALID_ARGUMENT, "empty request stream")
        if first.WhichOneof("payload") != "header":
            fail(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be the header")
        header = first.header
        name = parse_requisition_name(header.name)
        if header.nonce == 0:
            fail(grpc.StatusCode.INVALID_ARGUMENT, "nonce must be non-zero")
        if not header.requisition_fingerprint:
            fail(grpc.StatusCode.INVALID_ARGUMENT, "requisition_fingerprint is required")
        if caller != Principal.data_provider(name.data_provider_id):
            fail(
                grpc.StatusCode.PERMISSION_DENIED,
                f"{caller} may not fulfil {header.name} (or it might not exist)",
            )
        key = computation_details_pb2.ExternalRequisitionKey(
            external_requisition_id=name.requisition_id,
            requisition_fingerprint=header.requisition_fingerprint,
        )
        token = await self._computations.get_token_by_requisition(key)
        requisition = next((r for r in token.requisitions if r.external_key == key), None)
        if requisition is None:
            fail(grpc.StatusCode.NOT_FOUND, f"no computation is expecting {header.name}")
        verify_nonce(
            header.nonce, requisition.details, token.computation_details.kingdom_computation
        )
        protocol, _ = stage_from_proto(token.computation_stage)
        recorded_details = protocol_details(protocol, header, requisition.details, self._duchy_id)
        if requisition.path and requisition.details.nonce:
            fail(
                grpc.StatusCode.ALREADY_EXISTS,
                f"{header.name} was already fulfilled at duchies/{self._duchy_id}",
            )
        path = requisition.path  # recorded before: keep that data untouched
        if not path:
            path = RequisitionBlobKey(token.global_computation_id, name.requisition_id).path
            rules = BodyRules(self._max_payload_bytes, required=False)
            size = await store_body(
                self._store, path, body_chunks(request_iterator, _chunk_of, rules)
            )
            problem = sketch_size_error(protocol, size)
            if problem is not None:
                # Refused before it is recorded: the EDP may send a correct body again.
                await self._store.delete(path)
                fail(grpc.StatusCode.INVALID_ARGUMENT, f"{header.name}: {problem}")
            record = computations_service_pb2.RecordRequisitionFulfillmentRequest(
                token=token, key=key, blob_path=path, public_api_version=PUBLIC_API_VERSION
            )
            if recorded_details is not None:
                record.protocol_details.CopyFrom(recorded_details)
            await self._computations.record_requisition_fulfillment(record)
        await self._kingdom.fulfill_requisition(
            token.global_computation_id,
            name.requisition_id,
            header.nonce,
            header.etag,
            header.fulfillment_context if header.HasField("fulfillment_context") else None,
        )
        # Marks the Kingdom as told; leaves the recorded data and protocol details as they are.
        acknowledged = computations_service_pb2.RecordRequisitionFulfillmentRequest(
            token=token,
            key=key,
            blob_path=path,
            public_api_version=PUBLIC_API_VERSION,
            nonce=header.nonce,
        )
        await self._computations.record_requisition_fulfillment(acknowledged)
        return pb.FulfillRequisitionResponse(state=requisitions_pb2.Requisition.FULFILLED)
