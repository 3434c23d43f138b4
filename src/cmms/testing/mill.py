"""Test kit for mill stages: one duchy's real computations repository (SQLite, driven through the
internal API servicer without a network), an in-memory blob store, and fakes for the other duchies
and the Kingdom. Every fake records what it was asked and can be told to fail.

    env = await MillStageEnvironment.open(tmp_path, duchy_id="worker1")
    token = await env.create(global_id, protocol, details, requisitions)
    token = await env.move_to(token, stage, outputs=[b"peer input"])
    await env.runner(tables).process(await env.claim(protocol))

Time is a `ManualClock` shared by the repository and the mill, so lock expiry is a test's choice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from sqlalchemy.ext.asyncio import AsyncEngine

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_stats_service_pb2,
    computations_service_pb2,
)
from cmms.common.grpc import StatusError
from cmms.crypto import signing
from cmms.crypto.randomness import RandomSource, SeededRandomSource
from cmms.duchy.db import ComputationsRepository, create_database_engine, upgrade_engine
from cmms.duchy.internal_api.blob_cleanup import BlobCleanup
from cmms.duchy.internal_api.computations import ComputationsServicer
from cmms.duchy.mill.blobs import StageBlobs
from cmms.duchy.mill.computations import AdvanceRequest, RequisitionEntry
from cmms.duchy.mill.context import MillOptions, MillServices
from cmms.duchy.mill.handlers import HandlerTable
from cmms.duchy.mill.kingdom import (
    Failure,
    KingdomReporter,
    LogEntry,
    Participant,
    RequisitionParams,
    SetResultRequest,
)
from cmms.duchy.mill.peers import Header, PeerSender
from cmms.duchy.mill.results import ConsentSigner
from cmms.duchy.mill.retry import EnqueueBackoff
from cmms.duchy.mill.runner import StageRunner
from cmms.duchy.mill.stats import StatRequest, StatsRecorder
from cmms.duchy.mill.tokens import (
    Token,
    graph_of,
    output_paths,
    output_slots,
    protocol_of,
    role_of,
    stage_name,
    stage_of,
)
from cmms.duchy.mill.transitions import advance_request
from cmms.duchy.stage_messages import computation_stage
from cmms.protocols.stages import ProtocolType
from cmms.storage import BlobStore, ComputationBlobKey, computation_store, requisition_store
from cmms.storage.memory import MemoryBlobStore
from cmms.testing.manual_clock import ManualClock
from cmms.testing.scratch_databases import sqlite_url

pb = computations_service_pb2
MILL_ID = "test-mill-job"
LOCK_DURATION = timedelta(minutes=5)


class Faults:
    """Errors to raise from named calls, each a given number of times, in order."""

    def __init__(self) -> None:
        self._planned: dict[str, list[StatusError]] = defaultdict(list)

    def add(self, method: str, code: grpc.StatusCode, times: int = 1) -> None:
        self._planned[method].extend(
            StatusError(code, f"injected {code.name}") for _ in range(times)
        )

    def check(self, method: str) -> None:
        planned = self._planned.get(method)
        if planned:
            raise planned.pop(0)


# ------------------------------------------------------------------------ internal API


class ServicerComputations:
    """`ComputationsClient` calling the real internal-API servicer in process.

    `calls` lists every method called, so a test can see that nothing was written.
    """

    WRITES = frozenset({"update_details", "record_output", "advance", "finish", "enqueue"})

    def __init__(self, servicer: ComputationsServicer) -> None:
        self.servicer = servicer
        self.faults = Faults()
        self.calls: list[str] = []

    def _called(self, method: str) -> None:
        self.calls.append(method)
        self.faults.check(method)

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if c in self.WRITES]

    async def claim_work(
        self,
        computation_type: ProtocolType,
        owner: str,
        lock_duration: timedelta,
        prioritized_stages: Sequence[int],
    ) -> Token | None:
        self._called("claim_work")
        request = pb.ClaimWorkRequest(
            computation_type=int(computation_type),  # type: ignore[arg-type]
            owner=owner,
            prioritized_stages=[computation_stage(computation_type, s) for s in prioritized_stages],
        )
        request.lock_duration.FromTimedelta(lock_duration)
        reply = await self.servicer.ClaimWork(request, None)
        return reply.token if reply.HasField("token") else None

    async def get_token(self, global_computation_id: str) -> Token:
        self._called("get_token")
        reply = await self.servicer.GetComputationToken(
            pb.GetComputationTokenRequest(global_computation_id=global_computation_id), None
        )
        token: Token = reply.token
        return token

    async def update_details(
        self,
        token: Token,
        details: computation_details_pb2.ComputationDetails,
        requisitions: Sequence[RequisitionEntry] = (),
    ) -> Token:
        self._called("update_details")
        reply = await self.servicer.UpdateComputationDetails(
            pb.UpdateComputationDetailsRequest(
                token=token, details=details, requisitions=requisitions
            ),
            None,
        )
        updated: Token = reply.token
        return updated

    async def record_output(self, token: Token, blob_id: int, path: str) -> Token:
        self._called("record_output")
        reply = await self.servicer.RecordOutputBlobPath(
            pb.RecordOutputBlobPathRequest(token=token, output_blob_id=blob_id, blob_path=path),
            None,
        )
        recorded: Token = reply.token
        return recorded

    async def advance(self, request: AdvanceRequest) -> Token:
        self._called("advance")
        reply = await self.servicer.AdvanceComputationStage(request, None)
        advanced: Token = reply.token
        return advanced

    async def finish(self, token: Token, ending_stage: int, reason: int) -> Token:
        self._called("finish")
        reply = await self.servicer.FinishComputation(
            pb.FinishComputationRequest(
                token=token,
                ending_computation_stage=computation_stage(protocol_of(token), ending_stage),
                reason=reason,  # type: ignore[arg-type]
            ),
            None,
        )
        finished: Token = reply.token
        return finished

    async def enqueue(self, token: Token, delay_seconds: int, expected_owner: str) -> None:
        self._called("enqueue")
        await self.servicer.EnqueueComputation(
            pb.EnqueueComputationRequest(
                token=token, delay_seconds=delay_seconds, expected_owner=expected_owner
            ),
            None,
        )


@dataclass
class RecordingStats:
    """`StatsSink` keeping every stat (by metric name) instead of writing it."""

    requests: list[computation_stats_service_pb2.CreateComputationStatRequest] = field(
        default_factory=list
    )

    async def create_stat(self, request: StatRequest) -> None:
        self.requests.append(request)

    def names(self) -> set[str]:
        return {r.metric_name for r in self.requests}


# ------------------------------------------------------------------------ peers


@dataclass
class Delivered:
    peer: str
    header: Header
    payload: bytes
    chunks: int


class FakePeers:
    """`PeerControl` of the other duchies: their stages are set by the test; inputs recorded."""

    def __init__(self) -> None:
        self.stages: dict[str, int | None] = {}
        self.delivered: list[Delivered] = []
        self.faults = Faults()

    async def get_stage(self, peer: str, global_id: str, protocol: ProtocolType) -> int | None:
        self.faults.check(f"get_stage:{peer}")
        return self.stages.get(peer)

    async def advance(self, peer: str, header: Header, chunks: AsyncIterator[bytes]) -> None:
        self.faults.check(f"advance:{peer}")
        parts = [chunk async for chunk in chunks]
        self.delivered.append(Delivered(peer, header, b"".join(parts), len(parts)))


# ------------------------------------------------------------------------ Kingdom


class FakeKingdom:
    """`KingdomSystemApi` keeping one participant per name, with etags that change on update."""

    def __init__(self) -> None:
        self.participants: dict[str, Participant] = {}
        self.log_entries: list[tuple[str, LogEntry]] = []
        self.results: list[SetResultRequest] = []
        self.failures: list[tuple[str, Failure]] = []
        self.faults = Faults()
        self._version = 0

    def participant(self, name: str) -> Participant:
        if name not in self.participants:
            self.participants[name] = Participant(
                name=name, state=Participant.CREATED, etag=self._etag()
            )
        return self.participants[name]

    def _etag(self) -> str:
        self._version += 1
        return f"etag-{self._version}"

    def _updated(self, name: str, etag: str) -> Participant:
        current = self.participant(name)
        if etag and etag != current.etag:
            raise StatusError(grpc.StatusCode.ABORTED, "etag mismatch")
        current.etag = self._etag()
        return current

    async def get_participant(self, name: str) -> Participant:
        self.faults.check("get_participant")
        copy = Participant()
        copy.CopyFrom(self.participant(name))
        return copy

    async def set_requisition_params(
        self, name: str, params: RequisitionParams, etag: str
    ) -> Participant:
        self.faults.check("set_requisition_params")
        current = self._updated(name, etag)
        current.requisition_params.CopyFrom(params)
        current.state = (
            Participant.REQUISITION_PARAMS_SET
            if params.WhichOneof("protocol")
            in ("liquid_legions_v2", "reach_only_liquid_legions_v2")
            else Participant.READY
        )
        return current

    async def confirm_participant(self, name: str, etag: str) -> Participant:
        self.faults.check("confirm_participant")
        current = self._updated(name, etag)
        current.state = Participant.READY
        return current

    async def fail_participant(self, name: str, failure: Failure, etag: str) -> Participant:
        self.faults.check("fail_participant")
        current = self.participant(name)
        if current.state == Participant.FAILED:
            raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, "already failed")
        current = self._updated(name, etag)
        current.state = Participant.FAILED
        current.failure.CopyFrom(failure)
        self.failures.append((name, failure))
        return current

    async def create_log_entry(self, parent: str, entry: LogEntry) -> None:
        self.faults.check("create_log_entry")
        self.log_entries.append((parent, entry))

    async def set_computation_result(self, request: SetResultRequest) -> None:
        self.faults.check("set_computation_result")
        self.results.append(request)


class RecordingSleep:
    """An async sleep that returns at once and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@dataclass
class DictCertificates:
    """`CertificateSource` over a fixed map of certificate names."""

    certificates: Mapping[str, x509.Certificate]

    async def get(self, name: str) -> x509.Certificate:
        found = self.certificates.get(name)
        if found is None:
            raise StatusError(grpc.StatusCode.NOT_FOUND, f"no certificate {name}")
        return found


# ------------------------------------------------------------------------ the environment


class MillStageEnvironment:
    def __init__(
        self,
        engine: AsyncEngine,
        duchy_id: str,
        clock: ManualClock,
        store: BlobStore,
        signer: ConsentSigner,
    ) -> None:
        self.engine = engine
        self.duchy_id = duchy_id
        self.clock = clock
        self.store = store
        self.repository = ComputationsRepository(engine, clock=clock)
        self.computations = ServicerComputations(
            ComputationsServicer(self.repository, BlobCleanup(store))
        )
        self.peers = FakePeers()
        self.kingdom = FakeKingdom()
        self.stats = RecordingStats()
        self.sleep = RecordingSleep()
        self.signer = signer
        self.chunk_size = 1024 * 1024

    @classmethod
    async def open(
        cls,
        directory: Path,
        *,
        duchy_id: str,
        signer: ConsentSigner,
        store: BlobStore | None = None,
    ) -> MillStageEnvironment:
        engine = create_database_engine(sqlite_url(directory, f"{duchy_id}.db"))
        await upgrade_engine(engine)
        # Start at the real time: certificates made for the test are valid from about now.
        clock = ManualClock(datetime.now(UTC))
        return cls(engine, duchy_id, clock, store or MemoryBlobStore(), signer)

    async def close(self) -> None:
        await self.engine.dispose()

    # -------------------------------------------------------------------- the mill

    def services(self, randomness: RandomSource | None = None) -> MillServices:
        return MillServices(
            computations=self.computations,
            blobs=StageBlobs(self.store),
            peers=PeerSender(self.peers, self.chunk_size),
            kingdom=KingdomReporter(self.kingdom, self.duchy_id, self.sleep),
            stats=StatsRecorder(self.stats),
            signer=self.signer,
            clock=self.clock,
            randomness=randomness or SeededRandomSource(f"mill/{self.duchy_id}"),
        )

    def options(self, **changes: Any) -> MillOptions:
        values: dict[str, Any] = {
            "mill_id": MILL_ID,
            "duchy_id": self.duchy_id,
            "lock_duration": LOCK_DURATION,
        }
        values.update(changes)
        return MillOptions(**values)

    def runner(
        self,
        *tables: HandlerTable,
        randomness: RandomSource | None = None,
        backoff: EnqueueBackoff | None = None,
        **options: Any,
    ) -> StageRunner:
        return StageRunner(
            self.services(randomness),
            self.options(**options),
            {table.protocol: table for table in tables},
            backoff,
        )

    # -------------------------------------------------------------------- computations

    async def create(
        self,
        global_id: str,
        protocol: ProtocolType,
        details: computation_details_pb2.ComputationDetails,
        requisitions: Sequence[RequisitionEntry] = (),
    ) -> Token:
        reply = await self.computations.servicer.CreateComputation(
            pb.CreateComputationRequest(
                computation_type=int(protocol),  # type: ignore[arg-type]
                global_computation_id=global_id,
                computation_details=details,
                requisitions=requisitions,
            ),
            None,
        )
        token: Token = reply.token
        return token

    async def get(self, global_id: str) -> Token:
        reply = await self.computations.servicer.GetComputationToken(
            pb.GetComputationTokenRequest(global_computation_id=global_id), None
        )
        token: Token = reply.token
        return token

    async def move_to(
        self,
        token: Token,
        stage: int,
        outputs: Sequence[bytes] = (),
        inputs: Sequence[str] | None = None,
    ) -> Token:
        """Fill the current stage's empty OUTPUT slots with `outputs`, then advance to `stage`."""
        empty = [slot for slot in output_slots(token) if not slot.path]
        if len(outputs) != len(empty):
            raise ValueError(f"{len(empty)} output slots to fill, {len(outputs)} outputs given")
        for slot, data in zip(empty, outputs, strict=True):
            path = ComputationBlobKey(
                token.global_computation_id, stage_name(token), slot.blob_id
            ).path
            await computation_store(self.store).write_bytes(path, data)
            reply = await self.computations.servicer.RecordOutputBlobPath(
                pb.RecordOutputBlobPathRequest(
                    token=token, output_blob_id=slot.blob_id, blob_path=path
                ),
                None,
            )
            token = reply.token
        chosen = list(inputs) if inputs is not None else output_paths(token)
        advanced_reply = await self.computations.servicer.AdvanceComputationStage(
            advance_request(token, stage, chosen), None
        )
        advanced: Token = advanced_reply.token
        return advanced

    async def receive(self, global_id: str, sender: str, payload: bytes) -> Token:
        """What this duchy's computation control does with a peer's input: fill the sender's
        OUTPUT slot of the current WAIT stage, and advance once every slot is filled."""
        token = await self.get(global_id)
        slots = {slot.blob_id: slot for slot in output_slots(token)}
        keyed = _peer_blob_ids(token)
        blob_id = keyed[sender] if keyed else next(iter(slots))
        path = ComputationBlobKey(global_id, stage_name(token), blob_id).path
        await computation_store(self.store).write_bytes(path, payload)
        reply = await self.computations.servicer.RecordOutputBlobPath(
            pb.RecordOutputBlobPathRequest(token=token, output_blob_id=blob_id, blob_path=path),
            None,
        )
        token = reply.token
        if any(not slot.path for slot in output_slots(token)):
            return token
        following = graph_of(token).next_stage(stage_of(token), role_of(token))
        advanced = await self.computations.servicer.AdvanceComputationStage(
            advance_request(token, following, output_paths(token)), None
        )
        received: Token = advanced.token
        return received

    async def claim(self, protocol: ProtocolType, owner: str = MILL_ID) -> Token:
        token = await self.computations.claim_work(protocol, owner, LOCK_DURATION, ())
        if token is None:
            raise AssertionError("nothing to claim")
        self.computations.calls.clear()
        return token

    async def store_requisition(self, global_id: str, requisition_id: str, data: bytes) -> str:
        """Write a requisition's data as fulfilment does; returns the path to record."""
        path = f"{global_id}/{requisition_id}"
        await requisition_store(self.store).write_bytes(path, data)
        return path

    async def record_fulfillment(
        self,
        token: Token,
        key: computation_details_pb2.ExternalRequisitionKey,
        path: str,
        protocol_details: computation_details_pb2.RequisitionProtocolDetails | None = None,
    ) -> Token:
        request = pb.RecordRequisitionFulfillmentRequest(
            token=token, key=key, blob_path=path, public_api_version="v1"
        )
        if protocol_details is not None:
            request.protocol_details.CopyFrom(protocol_details)
        reply = await self.computations.servicer.RecordRequisitionFulfillment(request, None)
        recorded: Token = reply.token
        return recorded

    def participant(self, global_id: str) -> Participant:
        return self.kingdom.participant(f"computations/{global_id}/participants/{self.duchy_id}")


def _peer_blob_ids(token: Token) -> dict[str, int]:
    details = token.stage_specific_details
    protocol = details.WhichOneof("protocol")
    if protocol is None:
        return {}
    inner = getattr(details, protocol)
    if "detail" not in inner.DESCRIPTOR.oneofs_by_name:
        return {}
    detail = inner.WhichOneof("detail")
    if detail is None:
        return {}
    return dict(getattr(inner, detail).external_duchy_local_blob_id)


def signer_from_files(certificate_name: str, key_der: bytes) -> ConsentSigner:
    return ConsentSigner(certificate_name, signing.load_private_key(key_der))


__all__ = [
    "LOCK_DURATION",
    "MILL_ID",
    "DictCertificates",
    "FakeKingdom",
    "FakePeers",
    "Faults",
    "MillStageEnvironment",
    "RecordingSleep",
    "RecordingStats",
    "ServicerComputations",
    "signer_from_files",
]
