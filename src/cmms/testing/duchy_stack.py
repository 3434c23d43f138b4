"""Test kit for the duchy's servers: settings on loopback from the development PKI, a fake
Kingdom system API that records FulfillRequisition calls, and helpers that create computations
and drive them to a stage through the internal API.

Every server binds 127.0.0.1 on ephemeral ports and speaks mutual TLS with the PKI's party
certificates, exactly as in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc

from cmms.api.internal.duchy.protocol.v1 import (
    common_pb2,
    hmss_pb2,
    llv2_pb2,
    reach_only_llv2_pb2,
)
from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_token_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
)
from cmms.api.system.v1 import computation_pb2, requisitions_pb2, requisitions_pb2_grpc
from cmms.common.grpc import (
    AuthorizationPolicy,
    ClientTls,
    SecureServer,
    ServerOptions,
    ServerTls,
    ServiceBinding,
    StatusError,
    allow,
    secure_channel,
)
from cmms.common.identity import Principal, PrincipalKind, current_principal
from cmms.common.pki import PkiLayout
from cmms.duchy.internal_api.convert import stage_to_proto
from cmms.protocols.stages import AfterTransition

Token = computation_token_pb2.ComputationToken
Stub = computations_service_pb2_grpc.ComputationsStub
AGGREGATOR, WORKER1, WORKER2 = "aggregator", "worker1", "worker2"


def server_settings(pki: PkiLayout, principal: Principal, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for a server settings model: the party's TLS files, loopback ports."""
    files = pki.party(principal)
    return {
        "tls_cert_file": files.tls_cert,
        "tls_key_file": files.tls_key,
        "cert_collection_file": pki.all_root_certs,
        "trust_config_file": pki.trust_config,
        "host": "127.0.0.1",
        "port": 0,
        "health_port": 0,
        "http_port": 0,
        "shutdown_grace_seconds": 0.0,
        **extra,
    }


def open_channel(pki: PkiLayout, port: int, principal: Principal) -> grpc.aio.Channel:
    return secure_channel(f"127.0.0.1:{port}", ClientTls.from_pki(pki, principal))


# -------------------------------------------------------------------------- fake Kingdom


@dataclass
class FakeKingdomRequisitions(requisitions_pb2_grpc.RequisitionsServicer):  # type: ignore[misc]
    """Records every FulfillRequisition with its calling duchy; can be told to fail."""

    calls: list[tuple[str, requisitions_pb2.FulfillRequisitionRequest]] = field(
        default_factory=list
    )
    failure: StatusError | None = None
    # The next this many calls answer UNAVAILABLE (a Kingdom that is briefly unreachable).
    unavailable_calls: int = 0

    async def FulfillRequisition(
        self, request: requisitions_pb2.FulfillRequisitionRequest, context: Any
    ) -> computation_pb2.Requisition:
        self.calls.append((current_principal().id, request))
        if self.unavailable_calls:
            self.unavailable_calls -= 1
            raise StatusError(grpc.StatusCode.UNAVAILABLE, "briefly unreachable")
        if self.failure is not None:
            raise self.failure
        return computation_pb2.Requisition(name=request.name)


def fake_kingdom_server(pki: PkiLayout, servicer: FakeKingdomRequisitions) -> SecureServer:
    name = requisitions_pb2.DESCRIPTOR.services_by_name["Requisitions"].full_name
    return SecureServer(
        ServerOptions(
            name="fake-kingdom", health_port=None, http_port=None, shutdown_grace_seconds=0
        ),
        ServerTls.from_pki(pki, Principal.kingdom()),
        [
            ServiceBinding.for_servicer(
                name, requisitions_pb2_grpc.add_RequisitionsServicer_to_server, servicer
            )
        ],
        AuthorizationPolicy({name: allow(PrincipalKind.DUCHY)}),
    )


# -------------------------------------------------------------------------- computations


def llv2_details(
    role: int, participants: Sequence[str]
) -> computation_details_pb2.ComputationDetails:
    return computation_details_pb2.ComputationDetails(
        liquid_legions_v2=llv2_pb2.LiquidLegionsV2.ComputationDetails(
            role=role,  # type: ignore[arg-type]
            participants=[common_pb2.LiquidLegionsParticipant(duchy_id=d) for d in participants],
        )
    )


def ro_llv2_details(
    role: int, participants: Sequence[str]
) -> computation_details_pb2.ComputationDetails:
    return computation_details_pb2.ComputationDetails(
        reach_only_liquid_legions_v2=reach_only_llv2_pb2.ReachOnlyLiquidLegionsV2.ComputationDetails(
            role=role,  # type: ignore[arg-type]
            participants=[common_pb2.LiquidLegionsParticipant(duchy_id=d) for d in participants],
        )
    )


def hmss_details(role: int) -> computation_details_pb2.ComputationDetails:
    return computation_details_pb2.ComputationDetails(
        honest_majority_share_shuffle=hmss_pb2.HonestMajorityShareShuffle.ComputationDetails(
            role=role,  # type: ignore[arg-type]
            non_aggregators=[WORKER1, WORKER2],
            aggregator=AGGREGATOR,
        )
    )


def peer_blobs_stage_details(
    protocol: int, senders: Sequence[str]
) -> computation_details_pb2.ComputationStageDetails:
    peers = common_pb2.PeerInputBlobs(
        external_duchy_local_blob_id={d: i for i, d in enumerate(senders)}
    )
    if protocol == 1:
        inner = llv2_pb2.LiquidLegionsV2.StageDetails(wait_setup_phase_inputs=peers)
        return computation_details_pb2.ComputationStageDetails(liquid_legions_v2=inner)
    hmss = hmss_pb2.HonestMajorityShareShuffle.StageDetails(wait_on_aggregation_input=peers)
    return computation_details_pb2.ComputationStageDetails(honest_majority_share_shuffle=hmss)


class ComputationDriver:
    """Creates computations and moves them through stages via the internal API."""

    def __init__(self, stub: Stub) -> None:
        self.stub = stub

    async def create(
        self,
        global_id: str,
        protocol: int,
        details: computation_details_pb2.ComputationDetails,
        requisitions: Sequence[computation_details_pb2.RequisitionEntry] = (),
    ) -> Token:
        reply = await self.stub.CreateComputation(
            computations_service_pb2.CreateComputationRequest(
                computation_type=protocol,  # type: ignore[arg-type]
                global_computation_id=global_id,
                computation_details=details,
                requisitions=requisitions,
            )
        )
        token: Token = reply.token
        return token

    async def get(self, global_id: str) -> Token:
        reply = await self.stub.GetComputationToken(
            computations_service_pb2.GetComputationTokenRequest(global_computation_id=global_id)
        )
        token: Token = reply.token
        return token

    async def advance(
        self,
        token: Token,
        protocol: int,
        stage: int,
        after: AfterTransition,
        *,
        outputs: int = 0,
        inputs: Sequence[str] = (),
        stage_details: computation_details_pb2.ComputationStageDetails | None = None,
    ) -> Token:
        request = computations_service_pb2.AdvanceComputationStageRequest(
            token=token,
            next_computation_stage=stage_to_proto(protocol, stage),
            input_blobs=inputs,
            output_blobs=outputs,
            after_transition=int(after),  # type: ignore[arg-type]
        )
        if stage_details is not None:
            request.stage_details.CopyFrom(stage_details)
        reply = await self.stub.AdvanceComputationStage(request)
        advanced: Token = reply.token
        return advanced

    async def record_output(self, token: Token, blob_id: int, path: str) -> Token:
        reply = await self.stub.RecordOutputBlobPath(
            computations_service_pb2.RecordOutputBlobPathRequest(
                token=token, output_blob_id=blob_id, blob_path=path
            )
        )
        recorded: Token = reply.token
        return recorded

    async def llv2_aggregator_waiting_for_setup_inputs(
        self, global_id: str, participants: Sequence[str] = (WORKER1, WORKER2, AGGREGATOR)
    ) -> Token:
        """An LLv2 aggregator at WAIT_SETUP_PHASE_INPUTS with one empty slot per worker."""
        token = await self.create(global_id, 1, llv2_details(1, participants))
        token = await self.advance(token, 1, 2, AfterTransition.DO_NOT_ADD_TO_QUEUE)
        token = await self.advance(token, 1, 3, AfterTransition.ADD_UNCLAIMED_TO_QUEUE)
        senders = [d for d in participants if d != AGGREGATOR]
        return await self.advance(
            token,
            1,
            5,
            AfterTransition.DO_NOT_ADD_TO_QUEUE,
            outputs=len(senders),
            stage_details=peer_blobs_stage_details(1, senders),
        )

    async def llv2_non_aggregator_at(
        self,
        global_id: str,
        stage: int,
        requisitions: Sequence[computation_details_pb2.RequisitionEntry] = (),
    ) -> Token:
        """An LLv2 non-aggregator driven along its path up to `stage` (4, 6, 7 or 8)."""
        details = llv2_details(2, [WORKER1, WORKER2, AGGREGATOR])
        token = await self.create(global_id, 1, details, requisitions)
        path = [
            (2, AfterTransition.DO_NOT_ADD_TO_QUEUE, 0),
            (3, AfterTransition.ADD_UNCLAIMED_TO_QUEUE, 0),
            (4, AfterTransition.DO_NOT_ADD_TO_QUEUE, 0),
            (6, AfterTransition.ADD_UNCLAIMED_TO_QUEUE, 1),
            (7, AfterTransition.DO_NOT_ADD_TO_QUEUE, 1),
            (8, AfterTransition.ADD_UNCLAIMED_TO_QUEUE, 1),
        ]
        for next_stage, after, outputs in path:
            if token.computation_stage.liquid_legions_v2 == stage:
                break
            for blob in token.blobs:
                if blob.dependency_type == computation_details_pb2.OUTPUT and not blob.path:
                    token = await self.record_output(
                        token, blob.blob_id, f"{global_id}/local/{blob.blob_id}"
                    )
            token = await self.advance(token, 1, next_stage, after, outputs=outputs)
        return token


def stage_of(token: Token) -> int:
    member = token.computation_stage.WhichOneof("stage")
    assert member is not None
    number: int = getattr(token.computation_stage, member)
    return number


__all__ = [
    "AGGREGATOR",
    "WORKER1",
    "WORKER2",
    "ComputationDriver",
    "FakeKingdomRequisitions",
    "fake_kingdom_server",
    "hmss_details",
    "llv2_details",
    "open_channel",
    "peer_blobs_stage_details",
    "server_settings",
    "stage_of",
]
