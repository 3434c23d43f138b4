"""`ComputationParticipants`: Get, SetParticipantRequisitionParams, Confirm, Fail (§2.3)."""

from __future__ import annotations

from typing import Any

from cmms.api.system.v1 import (
    computation_participants_pb2 as participants_pb2,
)
from cmms.api.system.v1 import (
    computation_participants_pb2_grpc as participants_pb2_grpc,
)
from cmms.api.system.v1 import computation_pb2
from cmms.common.identity import PrincipalProvider, current_principal
from cmms.kingdom import names
from cmms.kingdom.db.participants import ParticipantFailure, ParticipantView
from cmms.kingdom.db.repository import KingdomRepositories
from cmms.kingdom.errors import invalid_argument, permission_denied
from cmms.kingdom.system.caller import calling_duchy
from cmms.kingdom.system.views import participant_message
from cmms.kingdom.timestamps import from_proto

Participant = computation_pb2.ComputationParticipant


class ComputationParticipantsServicer(participants_pb2_grpc.ComputationParticipantsServicer):
    def __init__(
        self,
        repositories: KingdomRepositories,
        *,
        principal_provider: PrincipalProvider = current_principal,
    ) -> None:
        self._repositories = repositories
        self._principal = principal_provider

    def _own_participant(self, name: str) -> tuple[int, str]:
        duchy_id = calling_duchy(self._principal)
        parsed = names.parse_participant(name)
        if parsed is None:
            raise invalid_argument(f"bad participant name {name!r}")
        if parsed[1] != duchy_id:
            raise permission_denied(f"{name} is not duchy {duchy_id}'s participant")
        return parsed

    async def GetComputationParticipant(
        self, request: participants_pb2.GetComputationParticipantRequest, context: Any
    ) -> Participant:
        computation_id, duchy_id = self._own_participant(request.name)
        return _message(await self._repositories.participants.get(computation_id, duchy_id))

    async def SetParticipantRequisitionParams(
        self, request: participants_pb2.SetParticipantRequisitionParamsRequest, context: Any
    ) -> Participant:
        computation_id, duchy_id = self._own_participant(request.name)
        params = Participant.RequisitionParams()
        params.CopyFrom(request.requisition_params)
        certificate = names.parse_certificate(params.duchy_certificate)
        if (
            certificate is None
            or certificate.owner.kind is not names.OwnerKind.DUCHY
            or certificate.owner.id != duchy_id
        ):
            raise invalid_argument("duchy_certificate must be a certificate of the same duchy")
        protocol_case = params.WhichOneof("protocol")
        if protocol_case is None:
            raise invalid_argument("requisition_params has no protocol set")
        # Output-only: the Kingdom fills it from its registry on every read.
        params.ClearField("duchy_certificate_der")
        view = await self._repositories.participants.set_requisition_params(
            computation_id,
            duchy_id,
            certificate,
            protocol_case,
            params.SerializeToString(),
            request.etag,
        )
        return _message(view)

    async def ConfirmComputationParticipant(
        self, request: participants_pb2.ConfirmComputationParticipantRequest, context: Any
    ) -> Participant:
        computation_id, duchy_id = self._own_participant(request.name)
        view = await self._repositories.participants.confirm(computation_id, duchy_id, request.etag)
        return _message(view)

    async def FailComputationParticipant(
        self, request: participants_pb2.FailComputationParticipantRequest, context: Any
    ) -> Participant:
        computation_id, duchy_id = self._own_participant(request.name)
        failure = request.failure
        view = await self._repositories.participants.fail(
            computation_id,
            duchy_id,
            ParticipantFailure(
                child_reference_id=failure.participant_child_reference_id,
                error_message=failure.error_message,
                error_time_us=from_proto(failure.error_time)
                if failure.HasField("error_time")
                else None,
                stage_attempt=failure.stage_attempt.SerializeToString()
                if failure.HasField("stage_attempt")
                else None,
            ),
            request.etag,
        )
        return _message(view)


def _message(view: ParticipantView) -> Participant:
    return participant_message(view.snapshot, view.participant)
