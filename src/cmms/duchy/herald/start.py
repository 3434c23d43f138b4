"""PENDING_COMPUTATION (duchy_internals §7.4): start the duchies that wait for the Kingdom's go.

* Liquid Legions (both variants): a non-aggregator goes WAIT_TO_START -> SETUP_PHASE. One still in
  CONFIRMATION_PHASE whose mill has stored the combined keys catches up through WAIT_TO_START; one
  without them is not ready yet. The aggregator waits for its peers' inputs instead.
* HMSS: only the first non-aggregator starts, WAIT_TO_START -> SETUP_PHASE; one still INITIALIZED
  with its key pair (the mill published it, then stopped short of its transition) catches up.
* TrusTee: WAIT_TO_START -> COMPUTING, catching up from INITIALIZED the same way.

Every step is guarded by the local stage, so a replay of the same Kingdom state does nothing.
"""

from __future__ import annotations

from cmms.api.internal.duchy.protocol.v1 import common_pb2, hmss_pb2, llv2_pb2, trustee_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.common.logging import get_logger
from cmms.duchy.herald.errors import HeraldError, NotReadyError
from cmms.duchy.herald.local import LocalComputations, Token
from cmms.duchy.herald.names import global_computation_id
from cmms.duchy.herald.stage_moves import advance_request, current_stage, is_terminal
from cmms.duchy.internal_api.convert import stage_from_proto
from cmms.protocols.stages import ProtocolType, RoleInComputation

Computation = computation_pb2.Computation
Ll = llv2_pb2.LiquidLegionsV2.Stage  # both Liquid Legions variants share stages 1-6
Hmss = hmss_pb2.HonestMajorityShareShuffle.Stage
TrusTee = trustee_pb2.TrusTee.Stage
_LL_FIELDS = {
    ProtocolType.LIQUID_LEGIONS_V2: "liquid_legions_v2",
    ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2: "reach_only_liquid_legions_v2",
}
_log = get_logger(__name__)


class ComputationStarter:
    def __init__(self, local: LocalComputations) -> None:
        self._local = local

    async def start(self, computation: Computation) -> None:
        gid = global_computation_id(computation.name)
        token = await self._local.get_token(gid)
        if token is None:
            raise HeraldError(f"no local computation {gid} to start")
        if is_terminal(token):
            return
        protocol = ProtocolType(stage_from_proto(token.computation_stage)[0])
        if protocol in _LL_FIELDS:
            await self._start_liquid_legions(token, _LL_FIELDS[protocol])
        elif protocol is ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE:
            await self._start_hmss(token)
        elif protocol is ProtocolType.TRUS_TEE:
            await self._start_trustee(token)
        else:
            raise HeraldError(f"cannot start protocol {protocol}")

    async def _advance(self, token: Token, stage: int, role: int) -> Token:
        return await self._local.advance(advance_request(token, stage, role))

    async def _start_liquid_legions(self, token: Token, field: str) -> None:
        details = getattr(token.computation_details, field)
        if details.role == RoleInComputation.AGGREGATOR:
            return  # started by its peers' setup inputs
        stage = current_stage(token)
        if stage in (Ll.INITIALIZATION_PHASE, Ll.WAIT_REQUISITIONS_AND_KEY_SET):
            raise NotReadyError(f"{token.global_computation_id} has not been confirmed here yet")
        if stage == Ll.CONFIRMATION_PHASE:
            # The mill confirmed at the Kingdom; without its combined keys stored locally the
            # setup phase could not run, so leave the transition to the mill until then.
            if not details.HasField("combined_public_key"):
                raise NotReadyError(
                    f"{token.global_computation_id} is still confirming here (no combined key)"
                )
            token = await self._advance(token, Ll.WAIT_TO_START, details.role)
            stage = current_stage(token)
        if stage == Ll.WAIT_TO_START:
            await self._advance(token, Ll.SETUP_PHASE, details.role)
        else:
            _log.info("already started", computation=token.global_computation_id, stage=stage)

    async def _start_hmss(self, token: Token) -> None:
        details = token.computation_details.honest_majority_share_shuffle
        if details.role != common_pb2.FIRST_NON_AGGREGATOR:
            return  # the others move when their inputs arrive
        stage = current_stage(token)
        if stage == Hmss.INITIALIZED:
            if not details.HasField("encryption_key_pair"):
                raise NotReadyError(f"{token.global_computation_id} has no key pair yet")
            token = await self._advance(token, Hmss.WAIT_TO_START, details.role)
            stage = current_stage(token)
        if stage == Hmss.WAIT_TO_START:
            await self._advance(token, Hmss.SETUP_PHASE, details.role)
        elif stage in (Hmss.WAIT_ON_SHUFFLE_INPUT_PHASE_ONE, Hmss.WAIT_ON_AGGREGATION_INPUT):
            raise HeraldError(
                f"{token.global_computation_id}: the first non-aggregator cannot be in {stage}"
            )
        else:
            _log.info("already started", computation=token.global_computation_id, stage=stage)

    async def _start_trustee(self, token: Token) -> None:
        role = token.computation_details.trus_tee.role
        stage = current_stage(token)
        if stage == TrusTee.INITIALIZED:
            # Every requisition is fulfilled, so the mill has published its params; only its
            # local transition is missing.
            token = await self._advance(token, TrusTee.WAIT_TO_START, role)
            stage = current_stage(token)
        if stage == TrusTee.WAIT_TO_START:
            await self._advance(token, TrusTee.COMPUTING, role)
        else:
            _log.info("already started", computation=token.global_computation_id, stage=stage)
