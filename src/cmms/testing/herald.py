"""Test kit for the Herald: in-memory stand-ins for the Kingdom's system API and the duchy's
internal API that behave like the real servers where the Herald can tell (versions, stage rules,
status codes, stream order and resumption), with fault injection; plus Kingdom computations.

The fakes satisfy the Herald's client interfaces (`KingdomComputations`, `LocalComputations`,
`ContinuationTokenStore`), so tests drive the real Herald code end to end without sockets.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_token_pb2,
    computations_service_pb2,
)
from cmms.api.public.v1 import crypto_pb2, measurement_spec_pb2
from cmms.api.system.v1 import computation_pb2, computations_pb2
from cmms.common.grpc import StatusError
from cmms.duchy.herald.config import (
    HmssSetup,
    LiquidLegionsSetup,
    ProtocolsSetupConfig,
    TrusTeeSetup,
)
from cmms.duchy.herald.kingdom import Failure, StreamedComputation
from cmms.duchy.internal_api.convert import stage_from_proto, stage_to_proto
from cmms.protocols.stages import StageGraphError, stage_graph

Computation = computation_pb2.Computation
State = Computation.State
Token = computation_token_pb2.ComputationToken
pb = computations_service_pb2
AGGREGATOR, WORKER1, WORKER2 = "aggregator", "worker1", "worker2"
DUCHIES = (AGGREGATOR, WORKER1, WORKER2)
PROTOCOLS = ("liquid_legions_v2", "reach_only_liquid_legions_v2", "honest_majority_share_shuffle")


def setup_config() -> ProtocolsSetupConfig:
    """The usual deployment: aggregator aggregates everything, worker1/worker2 are the workers."""
    return ProtocolsSetupConfig(
        llv2=LiquidLegionsSetup(aggregator=AGGREGATOR),
        reach_only_llv2=LiquidLegionsSetup(aggregator=AGGREGATOR),
        hmss=HmssSetup(
            first_non_aggregator=WORKER1, second_non_aggregator=WORKER2, aggregator=AGGREGATOR
        ),
        trustee=TrusTeeSetup(duchy=AGGREGATOR),
    )


class Faults:
    """Scripted failures: `add(method, code, times)` makes the next `times` calls fail."""

    def __init__(self) -> None:
        self._pending: dict[str, list[grpc.StatusCode]] = defaultdict(list)
        self.calls: dict[str, int] = defaultdict(int)

    def add(self, method: str, code: grpc.StatusCode, times: int = 1) -> None:
        self._pending[method] += [code] * times

    def check(self, method: str) -> None:
        self.calls[method] += 1
        if self._pending[method]:
            code = self._pending[method].pop(0)
            raise StatusError(code, f"injected {code.name} on {method}")


# ------------------------------------------------------------------------------- Kingdom


def encode_token(seconds: int, computation_id: int) -> str:
    message = computations_pb2.StreamActiveComputationsContinuationToken(
        last_seen_update_time=Timestamp(seconds=seconds),
        last_seen_external_computation_id=computation_id,
    )
    return base64.urlsafe_b64encode(message.SerializeToString()).decode().rstrip("=")


def decode_token(token: str) -> tuple[int, int]:
    if not token:
        return (-1, -1)
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    message = computations_pb2.StreamActiveComputationsContinuationToken.FromString(raw)
    return (message.last_seen_update_time.seconds, message.last_seen_external_computation_id)


@dataclass
class FakeKingdom:
    """The system API's stream and FailComputationParticipant, for one duchy.

    `publish` records a computation's new state at the next update time; a stream replays every
    record after its token's position, in order. With `hold_open` a stream then waits for more
    (like the real, long-lived stream) until `end_streams`; otherwise it ends at once.
    """

    hold_open: bool = False
    faults: Faults = field(default_factory=Faults)
    failed: list[tuple[str, Failure]] = field(default_factory=list)
    stream_requests: list[str] = field(default_factory=list)
    _log: list[tuple[int, int, Computation]] = field(default_factory=list)
    _ids: dict[str, int] = field(default_factory=dict)
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _generation: int = 0

    async def publish(self, computation: Computation) -> str:
        """Make `computation` (in its current state) the latest record; returns its token."""
        computation_id = self._ids.setdefault(computation.name, len(self._ids) + 1)
        copy = Computation()
        copy.CopyFrom(computation)
        moment = next(self._clock)
        self._log.append((moment, computation_id, copy))
        async with self._changed:
            self._changed.notify_all()
        return encode_token(moment, computation_id)

    async def end_streams(self) -> None:
        """End the streams that wait for more records (the Kingdom's periodic normal end)."""
        self._generation += 1
        async with self._changed:
            self._changed.notify_all()

    async def stream_active_computations(
        self, continuation_token: str
    ) -> AsyncIterator[StreamedComputation]:
        self.stream_requests.append(continuation_token)
        self.faults.check("StreamActiveComputations")
        position = decode_token(continuation_token)
        generation = self._generation
        while True:
            for moment, computation_id, computation in list(self._log):
                if (moment, computation_id) > position:
                    position = (moment, computation_id)
                    self.faults.check("StreamActiveComputations.next")
                    yield StreamedComputation(computation, encode_token(*position))
            if not self.hold_open or self._generation != generation:
                return
            async with self._changed:
                idle = not any((m, i) > position for m, i, _ in self._log)
                if idle and self._generation == generation:
                    await self._changed.wait()
            if self._generation != generation:
                return

    async def fail_participant(self, participant_name: str, failure: Failure) -> None:
        self.faults.check("FailComputationParticipant")
        self.failed.append((participant_name, failure))


# ------------------------------------------------------------------------------- internal API


@dataclass
class _Stored:
    token: Token


class FakeLocalComputations:
    """The internal Computations service as the Herald sees it, in memory.

    Every mutation checks the token's version (ABORTED when stale) and the stage rules of the
    protocol's stage graph (FAILED_PRECONDITION), and returns the new token.
    """

    def __init__(self) -> None:
        self.faults = Faults()
        self.created: list[pb.CreateComputationRequest] = []
        self.deleted: list[int] = []
        self._by_gid: dict[str, _Stored] = {}
        self._ids = itertools.count(101)
        self._versions = itertools.count(1)

    def stored(self, global_computation_id: str) -> Token | None:
        found = self._by_gid.get(global_computation_id)
        return None if found is None else _copy(found.token)

    def stage(self, global_computation_id: str) -> int:
        token = self.stored(global_computation_id)
        assert token is not None, f"no computation {global_computation_id}"
        return stage_from_proto(token.computation_stage)[1]

    async def create(self, request: pb.CreateComputationRequest) -> Token:
        self.faults.check("CreateComputation")
        if request.global_computation_id in self._by_gid:
            raise StatusError(grpc.StatusCode.ALREADY_EXISTS, "computation exists")
        graph = stage_graph(request.computation_type)
        stage = (
            stage_from_proto(request.computation_stage)[1]
            if request.HasField("computation_stage")
            else graph.initial_stage.value
        )
        if not graph.is_initial(stage):
            raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, f"{stage} is not initial")
        self.created.append(request)
        token = Token(
            local_computation_id=next(self._ids),
            global_computation_id=request.global_computation_id,
            computation_stage=stage_to_proto(graph.protocol, stage),
            version=next(self._versions),
            computation_details=request.computation_details,
            requisitions=[
                computation_token_pb2.RequisitionMetadata(external_key=e.key, details=e.value)
                for e in request.requisitions
            ],
        )
        self._by_gid[request.global_computation_id] = _Stored(token)
        return _copy(token)

    async def get_token(self, global_computation_id: str) -> Token | None:
        self.faults.check("GetComputationToken")
        return self.stored(global_computation_id)

    def _current(self, token: Token) -> _Stored:
        stored = self._by_gid.get(token.global_computation_id)
        if stored is None:
            raise StatusError(grpc.StatusCode.NOT_FOUND, "no such computation")
        if stored.token.version != token.version:
            raise StatusError(grpc.StatusCode.ABORTED, "token version is stale")
        return stored

    async def update_details(
        self,
        token: Token,
        details: computation_details_pb2.ComputationDetails,
        requisitions: Sequence[computation_details_pb2.RequisitionEntry],
    ) -> Token:
        self.faults.check("UpdateComputationDetails")
        stored = self._current(token)
        stored.token.computation_details.CopyFrom(details)
        by_key = {
            (e.key.external_requisition_id, e.key.requisition_fingerprint): e for e in requisitions
        }
        for requisition in stored.token.requisitions:
            key = requisition.external_key
            entry = by_key.get((key.external_requisition_id, key.requisition_fingerprint))
            if entry is not None:
                requisition.details.CopyFrom(entry.value)
        stored.token.version = next(self._versions)
        return _copy(stored.token)

    async def advance(self, request: pb.AdvanceComputationStageRequest) -> Token:
        self.faults.check("AdvanceComputationStage")
        stored = self._current(request.token)
        protocol, stage = stage_from_proto(stored.token.computation_stage)
        following = stage_from_proto(request.next_computation_stage)[1]
        graph = stage_graph(protocol)
        try:
            graph.check_transition(stage, following)
        except StageGraphError as error:
            raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, str(error)) from error
        if graph.is_terminal(following):
            raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, "terminal stages need Finish")
        blobs = [
            computation_token_pb2.ComputationStageBlobMetadata(
                blob_id=i, dependency_type=computation_details_pb2.INPUT, path=path
            )
            for i, path in enumerate(request.input_blobs)
        ]
        blobs += [
            computation_token_pb2.ComputationStageBlobMetadata(
                blob_id=len(blobs) + i, dependency_type=computation_details_pb2.OUTPUT
            )
            for i in range(request.output_blobs)
        ]
        token = stored.token
        token.computation_stage.CopyFrom(request.next_computation_stage)
        del token.blobs[:]
        token.blobs.extend(blobs)
        token.stage_specific_details.CopyFrom(request.stage_details)
        token.version = next(self._versions)
        return _copy(token)

    async def finish(
        self,
        token: Token,
        ending_stage: object,
        reason: computation_details_pb2.ComputationDetails.CompletedReason.ValueType,
    ) -> Token:
        self.faults.check("FinishComputation")
        stored = self._current(token)
        protocol, _ = stage_from_proto(stored.token.computation_stage)
        assert isinstance(ending_stage, type(stored.token.computation_stage))
        if not stage_graph(protocol).is_terminal(stage_from_proto(ending_stage)[1]):
            raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, "not a terminal stage")
        stored.token.computation_stage.CopyFrom(ending_stage)
        stored.token.computation_details.ending_state = reason
        del stored.token.blobs[:]
        stored.token.version = next(self._versions)
        return _copy(stored.token)

    async def delete(self, local_computation_id: int) -> None:
        self.faults.check("DeleteComputation")
        for gid, stored in list(self._by_gid.items()):
            if stored.token.local_computation_id == local_computation_id:
                del self._by_gid[gid]
                self.deleted.append(local_computation_id)

    async def force_advance(
        self, global_computation_id: str, stage: int, outputs: int = 0
    ) -> Token:
        """What a mill would do: move the computation along (test setup)."""
        token = self.stored(global_computation_id)
        assert token is not None
        protocol, _ = stage_from_proto(token.computation_stage)
        entry = stage_graph(protocol).entry(stage)
        return await self.advance(
            pb.AdvanceComputationStageRequest(
                token=token,
                next_computation_stage=stage_to_proto(protocol, stage),
                output_blobs=outputs,
                after_transition=int(entry.after_transition),  # type: ignore[arg-type]
            )
        )

    async def force_details(
        self, global_computation_id: str, details: computation_details_pb2.ComputationDetails
    ) -> Token:
        token = self.stored(global_computation_id)
        assert token is not None
        return await self.update_details(token, details, [])


def _copy(token: Token) -> Token:
    copy = Token()
    copy.CopyFrom(token)
    return copy


class FakeTokenStore:
    """ContinuationTokens: refuses a token older than the stored one, like the real service."""

    def __init__(self, token: str = "") -> None:
        self.token = token
        self.history: list[str] = []
        self.faults = Faults()

    async def get(self) -> str:
        self.faults.check("GetContinuationToken")
        return self.token

    async def set(self, token: str) -> None:
        self.faults.check("SetContinuationToken")
        if self.token and decode_token(token)[0] < decode_token(self.token)[0]:
            raise StatusError(grpc.StatusCode.FAILED_PRECONDITION, "token is older")
        self.token = token
        self.history.append(token)


@dataclass
class RecordingSleep:
    """An injected sleep: records each delay and only yields to the event loop."""

    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


# ------------------------------------------------------------------------------- computations


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def nonce_hash(nonce: int) -> bytes:
    return sha256((nonce % 2**64).to_bytes(8, "big"))


@dataclass
class ComputationBuilder:
    """Builds system `Computation`s the way the Kingdom presents them."""

    computation_id: str = "AAAAAAAAAAE"
    participants: Sequence[str] = DUCHIES
    nonces: Sequence[int] = (11, 22)
    reach_only: bool = False
    maximum_frequency: int = 10
    epsilon: float = 1.0
    delta: float = 1e-9
    noise_mechanism: int = computation_pb2.DISCRETE_GAUSSIAN
    public_api_version: str = "v1"

    @property
    def name(self) -> str:
        return f"computations/{self.computation_id}"

    def measurement_spec(self) -> bytes:
        spec = measurement_spec_pb2.MeasurementSpec(
            measurement_public_key=crypto_pb2.EncryptionPublicKey(
                format=crypto_pb2.EncryptionPublicKey.TINK_KEYSET, data=b"mc key"
            ),
            nonce_hashes=[nonce_hash(n) for n in self.nonces],
        )
        spec.vid_sampling_interval.width = 0.5
        if self.reach_only:
            spec.reach.privacy_params.epsilon = self.epsilon
            spec.reach.privacy_params.delta = self.delta
        else:
            rf = spec.reach_and_frequency
            rf.reach_privacy_params.epsilon = rf.frequency_privacy_params.epsilon = self.epsilon
            rf.reach_privacy_params.delta = rf.frequency_privacy_params.delta = self.delta
            rf.maximum_frequency = self.maximum_frequency
        return spec.SerializeToString()

    def build(self, protocol: str, state: int = State.PENDING_REQUISITION_PARAMS) -> Computation:
        computation = Computation(
            name=self.name,
            public_api_version=self.public_api_version,
            measurement_spec=self.measurement_spec(),
            state=state,  # type: ignore[arg-type]
        )
        for duchy in self.participants:
            computation.computation_participants.add(
                name=f"{self.name}/participants/{duchy}",
                state=computation_pb2.ComputationParticipant.CREATED,
            )
        workers = [d for d in self.participants if d != AGGREGATOR]
        for index, nonce in enumerate(self.nonces):
            requisition = computation.requisitions.add(
                name=f"{self.name}/requisitions/req{index + 1}",
                requisition_spec_hash=sha256(f"spec {index}".encode()),
                nonce_hash=nonce_hash(nonce),
                state=computation_pb2.Requisition.UNFULFILLED,
            )
            if protocol in ("honest_majority_share_shuffle", "trus_tee"):
                assigned = workers[index % len(workers)] if protocol != "trus_tee" else AGGREGATOR
                requisition.fulfilling_computation_participant = (
                    f"{self.name}/participants/{assigned}"
                )
        config = computation.mpc_protocol_config
        if protocol in ("liquid_legions_v2", "reach_only_liquid_legions_v2"):
            ll = getattr(config, protocol)
            ll.sketch_params.decay_rate = 12.0
            ll.sketch_params.max_size = 100_000
            ll.mpc_noise.blinded_histogram_noise.epsilon = 0.5
            ll.mpc_noise.blinded_histogram_noise.delta = 1e-10
            ll.mpc_noise.publisher_noise.epsilon = 0.25
            ll.mpc_noise.publisher_noise.delta = 1e-11
            ll.elliptic_curve_id = 415
            ll.noise_mechanism = self.noise_mechanism  # type: ignore[assignment]
        elif protocol == "honest_majority_share_shuffle":
            hmss = config.honest_majority_share_shuffle
            hmss.reach_and_frequency_ring_modulus = 127
            hmss.reach_ring_modulus = 31
            hmss.noise_mechanism = self.noise_mechanism  # type: ignore[assignment]
        else:
            config.trus_tee.noise_mechanism = self.noise_mechanism  # type: ignore[assignment]
            config.trus_tee.result_minimum_thresholds.min_users = 5
        return computation

    def with_keys(self, computation: Computation, protocol: str) -> Computation:
        """All participants published their Liquid Legions keys (PENDING_PARTICIPANT_CONFIRMATION)."""
        confirmed = Computation()
        confirmed.CopyFrom(computation)
        confirmed.state = State.PENDING_PARTICIPANT_CONFIRMATION
        for participant in confirmed.computation_participants:
            duchy = participant.name.rsplit("/", 1)[1]
            participant.state = computation_pb2.ComputationParticipant.REQUISITION_PARAMS_SET
            params = participant.requisition_params
            params.duchy_certificate = f"duchies/{duchy}/certificates/c1"
            params.duchy_certificate_der = f"DER of {duchy}".encode()
            ll = getattr(params, protocol)
            ll.el_gamal_public_key = el_gamal_key(duchy).SerializeToString()
            ll.el_gamal_public_key_signature = f"signature of {duchy}".encode()
            ll.el_gamal_public_key_signature_algorithm_oid = "1.2.840.10045.4.3.2"
        for index, requisition in enumerate(confirmed.requisitions):
            requisition.state = computation_pb2.Requisition.FULFILLED
            requisition.nonce = self.nonces[index] % 2**64
            requisition.fulfilling_computation_participant = f"{self.name}/participants/{WORKER1}"
        return confirmed

    @staticmethod
    def in_state(computation: Computation, state: int) -> Computation:
        changed = Computation()
        changed.CopyFrom(computation)
        changed.state = state  # type: ignore[assignment]
        return changed


def el_gamal_key(duchy: str) -> crypto_pb2.ElGamalPublicKey:
    """A recognisable stand-in key (the Herald copies keys, it does not use them)."""
    return crypto_pb2.ElGamalPublicKey(
        elliptic_curve_id=415,
        generator=b"\x02" + b"g" * 32,
        element=b"\x03" + hashlib.sha256(duchy.encode()).digest(),
    )
