"""PENDING_PARTICIPANT_CONFIRMATION for Liquid Legions (duchy_internals §7.4): record every
participant's key and certificate in ring order, and the requisitions' nonces and fulfilling
duchies, then queue CONFIRMATION_PHASE for the mill.

Guarded by the local stage: a computation already at or past CONFIRMATION_PHASE is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from cmms.api.internal.duchy.protocol.v1 import common_pb2, llv2_pb2
from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.api.public.v1 import crypto_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.common.logging import get_logger
from cmms.duchy.herald.config import ProtocolsSetupConfig
from cmms.duchy.herald.errors import HeraldError, NotReadyError
from cmms.duchy.herald.local import LocalComputations, Token
from cmms.duchy.herald.names import global_computation_id, participant_duchy_id
from cmms.duchy.herald.ring_order import RingMember, ring_order
from cmms.duchy.herald.stage_moves import advance_request, current_stage, protocol_and_stage
from cmms.duchy.herald.starters.common import fill_requisition_details, requisition_key
from cmms.protocols.stages import ProtocolType

Computation = computation_pb2.Computation
Stage = llv2_pb2.LiquidLegionsV2.Stage  # reach-only LLv2 numbers its first stages the same way
# The name of the Liquid Legions member in both the Kingdom's params and the local details.
_FIELDS = {
    ProtocolType.LIQUID_LEGIONS_V2: "liquid_legions_v2",
    ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2: "reach_only_liquid_legions_v2",
}
_log = get_logger(__name__)


@dataclass(frozen=True)
class _Candidate(RingMember):
    participant: common_pb2.LiquidLegionsParticipant


class Confirmer:
    def __init__(self, local: LocalComputations, setup: ProtocolsSetupConfig) -> None:
        self._local = local
        self._setup = setup

    async def confirm(self, computation: Computation) -> None:
        gid = global_computation_id(computation.name)
        token = await self._local.get_token(gid)
        if token is None:
            raise HeraldError(f"no local computation {gid} to confirm")
        protocol, stage = protocol_and_stage(token)
        field = _FIELDS.get(ProtocolType(protocol))
        if field is None:
            raise HeraldError(f"protocol {protocol} has no participant confirmation")
        if stage == Stage.INITIALIZATION_PHASE:
            token = await self._catch_up_after_initialization(token, field)
            stage = current_stage(token)
        if stage != Stage.WAIT_REQUISITIONS_AND_KEY_SET:
            _log.info("confirmation already recorded", computation=gid, stage=stage)
            return
        details = self._details_with_ring(token, computation, field)
        token = await self._local.update_details(
            token, details, self._requisitions(token, computation)
        )
        role = getattr(token.computation_details, field).role
        await self._local.advance(advance_request(token, Stage.CONFIRMATION_PHASE, role))

    async def _catch_up_after_initialization(self, token: Token, field: str) -> Token:
        # The Kingdom has every duchy's key, so this duchy's mill published its own and only its
        # local transition is missing (it crashed, or has not got there yet). With the key
        # recorded locally, make that transition here.
        if not getattr(token.computation_details, field).local_el_gamal_key.HasField("public_key"):
            raise NotReadyError(
                f"computation {token.global_computation_id} is still initializing here"
            )
        role = getattr(token.computation_details, field).role
        return await self._local.advance(
            advance_request(token, Stage.WAIT_REQUISITIONS_AND_KEY_SET, role)
        )

    def _details_with_ring(
        self, token: Token, computation: Computation, field: str
    ) -> computation_details_pb2.ComputationDetails:
        setup = self._setup.llv2 if field == "liquid_legions_v2" else self._setup.reach_only_llv2
        if setup is None:
            raise HeraldError(f"this duchy is not set up for {field}")
        candidates = [_candidate(p, field) for p in computation.computation_participants]
        ring = ring_order(candidates, setup.aggregator, token.global_computation_id)
        details = computation_details_pb2.ComputationDetails()
        details.CopyFrom(token.computation_details)
        protocol_details = getattr(details, field)
        del protocol_details.participants[:]
        protocol_details.participants.extend(c.participant for c in ring)
        return details

    @staticmethod
    def _requisitions(
        token: Token, computation: Computation
    ) -> list[computation_details_pb2.RequisitionEntry]:
        # Each entry replaces the stored details whole, so start from what is stored (facts
        # recorded at fulfilment stay) and lay the Kingdom's facts over it.
        stored = {r.external_key.external_requisition_id: r.details for r in token.requisitions}
        entries = []
        for requisition in computation.requisitions:
            key = requisition_key(computation, requisition)
            details = computation_details_pb2.RequisitionDetails()
            if key.external_requisition_id in stored:
                details.CopyFrom(stored[key.external_requisition_id])
            entries.append(
                computation_details_pb2.RequisitionEntry(
                    key=key, value=fill_requisition_details(details, requisition)
                )
            )
        return entries


def _candidate(participant: computation_pb2.ComputationParticipant, field: str) -> _Candidate:
    duchy_id = participant_duchy_id(participant.name)
    params = participant.requisition_params
    if not params.HasField(field):  # type: ignore[arg-type]
        raise HeraldError(f"participant {duchy_id} has not published a {field} key")
    published = getattr(params, field)
    try:
        key = crypto_pb2.ElGamalPublicKey.FromString(published.el_gamal_public_key)
    except DecodeError as error:
        raise HeraldError(f"participant {duchy_id} published an unreadable key") from error
    return _Candidate(
        duchy_id=duchy_id,
        serialized_public_key=published.el_gamal_public_key,
        participant=common_pb2.LiquidLegionsParticipant(
            duchy_id=duchy_id,
            public_key=key,
            serialized_public_key=published.el_gamal_public_key,
            public_key_signature=published.el_gamal_public_key_signature,
            public_key_signature_algorithm_oid=published.el_gamal_public_key_signature_algorithm_oid,
            duchy_certificate_der=params.duchy_certificate_der,
        ),
    )
