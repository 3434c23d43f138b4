"""One attempt at one stage: the latest token and the operations a handler composes.

Every mutation continues from the token the previous one returned (pitfall 2), and first checks
that this mill still holds the work lock: once the lock has lapsed another worker may own the
computation, so nothing more is written (`LockLostError`).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.crypto.randomness import RandomSource
from cmms.duchy.mill.blobs import StageBlobs
from cmms.duchy.mill.computations import ComputationsClient, RequisitionEntry
from cmms.duchy.mill.errors import LockLostError, PermanentError
from cmms.duchy.mill.kingdom import KingdomReporter, RequisitionParams
from cmms.duchy.mill.peers import Delivery, PeerSender
from cmms.duchy.mill.results import ConsentSigner, MeasurementResult, set_result_request
from cmms.duchy.mill.stats import AttemptKey, StatsRecorder
from cmms.duchy.mill.tokens import (
    RequisitionMetadata,
    Token,
    holds_lock,
    input_paths,
    output_paths,
    output_slots,
    protocol_details,
)
from cmms.duchy.mill.transitions import advance_request
from cmms.protocols.stages import ProtocolType, StageGraph, stage_graph

CompletedReason = computation_details_pb2.ComputationDetails.CompletedReason
Clock = Callable[[], datetime]
Value = TypeVar("Value")


@dataclass(frozen=True)
class MillOptions:
    mill_id: str
    duchy_id: str
    lock_duration: timedelta = timedelta(minutes=5)
    # A stage claimed more often than this fails the computation (duchy_internals §8.2).
    maximum_attempts: int = 10
    # Worker processes of the protocol kernels that take them.
    parallelism: int = 1


@dataclass(frozen=True)
class MillServices:
    """The collaborators every handler may use."""

    computations: ComputationsClient
    blobs: StageBlobs
    peers: PeerSender
    kingdom: KingdomReporter
    stats: StatsRecorder
    signer: ConsentSigner
    clock: Clock
    randomness: RandomSource


@dataclass
class _CryptoTime:
    wall: float = 0.0
    cpu: float = 0.0
    used: bool = field(default=False)


class StageContext:
    def __init__(
        self,
        token: Token,
        protocol: ProtocolType,
        stage: int,
        role: int,
        services: MillServices,
        options: MillOptions,
    ) -> None:
        self._token = token
        self.protocol = protocol
        self.stage = stage
        self.role = role
        self.services = services
        self.options = options
        self.key = AttemptKey(token.local_computation_id, protocol, stage, token.attempt)
        self._crypto = _CryptoTime()

    # ----------------------------------------------------------------------------- reading

    @property
    def token(self) -> Token:
        """The latest token: the claimed one, or what the last mutation returned."""
        return self._token

    @property
    def global_id(self) -> str:
        return self._token.global_computation_id

    @property
    def graph(self) -> StageGraph:
        return stage_graph(self.protocol)

    @property
    def stage_name(self) -> str:
        return self.graph.stage(self.stage).name

    @property
    def details(self) -> Any:
        """The protocol member of the latest computation details."""
        return protocol_details(self._token)

    @property
    def randomness(self) -> RandomSource:
        return self.services.randomness

    def now(self) -> datetime:
        return self.services.clock()

    async def read_inputs(self) -> list[bytes]:
        """The current stage's INPUT blobs, by blob id."""
        paths = input_paths(self._token)
        if any(not path for path in paths):
            raise PermanentError(f"{self.stage_name} has an input slot without a path")
        return [await self.services.blobs.read_computation_blob(path) for path in paths]

    async def read_requisition(self, requisition: RequisitionMetadata) -> bytes:
        return await self.services.blobs.read_requisition(requisition.path)

    # ----------------------------------------------------------------------------- work

    def compute(self, function: Callable[..., Value], *args: Any) -> Value:
        """Run a protocol stage function, timing it for the stage statistics."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args)
        finally:
            self._crypto.wall += time.perf_counter() - wall
            self._crypto.cpu += time.process_time() - cpu
            self._crypto.used = True

    async def output_or(self, compute: Callable[[], Awaitable[bytes | bytearray]]) -> bytes:
        """The stage's output: what an earlier attempt stored, or else computed and stored now.

        The output lives at the deterministic key of the stage's OUTPUT slot (blob id 0 for a
        stage without slots). An output stored but not yet recorded is reused too, so a retry
        sends exactly what the first attempt may already have sent.
        """
        slots = output_slots(self._token)
        slot = slots[0] if slots else None
        if slot is not None and slot.path:
            return await self.services.blobs.read_computation_blob(slot.path)
        path = StageBlobs.output_path(self.global_id, self.stage_name, slot.blob_id if slot else 0)
        if await self.services.blobs.exists(path):
            data = await self.services.blobs.read_computation_blob(path)
        else:
            data = bytes(await compute())
            self.check_lock()
            await self.services.blobs.write_output(path, data)
        if slot is not None:
            self.check_lock()
            self._token = await self.services.computations.record_output(
                self._token, slot.blob_id, path
            )
        return data

    # ----------------------------------------------------------------------------- changes

    def check_lock(self) -> None:
        """Raise `LockLostError` unless this mill still holds an unexpired lock."""
        if not holds_lock(self._token, self.options.mill_id, self.now()):
            raise LockLostError(
                f"mill {self.options.mill_id} no longer holds computation {self.global_id}"
            )

    async def update_details(
        self,
        details: computation_details_pb2.ComputationDetails,
        requisitions: Sequence[RequisitionEntry] = (),
    ) -> None:
        self.check_lock()
        self._token = await self.services.computations.update_details(
            self._token, details, requisitions
        )

    async def send(
        self, peer: str, description: int, expected_stage: int, payload: bytes | bytearray
    ) -> None:
        """Deliver `payload` to `peer` unless it already got it."""
        self.check_lock()
        sent = await self.services.peers.send(
            self.protocol, peer, self.global_id, description, expected_stage, payload
        )
        if sent.delivery is Delivery.SENT:
            await self.services.stats.sent(self.key, sent.bytes_sent, sent.seconds)

    async def advance(
        self,
        next_stage: int | None = None,
        inputs: Sequence[str] | None = None,
    ) -> None:
        """Move to `next_stage` (default: this role's next stage) with `inputs` (default: the
        current stage's outputs)."""
        target = (
            next_stage if next_stage is not None else self.graph.next_stage(self.stage, self.role)
        )
        chosen = list(inputs) if inputs is not None else output_paths(self._token)
        if any(not path for path in chosen):
            raise PermanentError(f"{self.stage_name} has an output slot without a path")
        self.check_lock()
        self._token = await self.services.computations.advance(
            advance_request(self._token, int(target), chosen)
        )

    async def finish(self, reason: int = CompletedReason.SUCCEEDED) -> None:
        self.check_lock()
        ending = next(iter(self.graph.terminal_stages))
        self._token = await self.services.computations.finish(self._token, ending, reason)

    async def set_requisition_params(self, params: RequisitionParams) -> None:
        """Publish `params` (the certificate name is filled in here)."""
        full = RequisitionParams()
        full.CopyFrom(params)
        full.duchy_certificate = self.services.signer.certificate_name
        self.check_lock()
        await self.services.kingdom.set_requisition_params(self.global_id, full)

    async def confirm_participation(self) -> None:
        self.check_lock()
        await self.services.kingdom.confirm(self.global_id)

    async def report_result(self, result: MeasurementResult) -> None:
        request = set_result_request(self._token, self.services.signer, result)
        self.check_lock()
        await self.services.kingdom.set_result(request)

    async def record_crypto_time(self) -> None:
        if self._crypto.used:
            await self.services.stats.crypto(self.key, self._crypto.wall, self._crypto.cpu)
