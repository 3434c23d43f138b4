"""What the mill tells the Kingdom: its participant's params, confirmation or failure, the
result, and log entries about transient errors (duchy_internals §8.3, §8.4).

`KingdomSystemApi` is the raw set of calls; `KingdomReporter` adds the participant update loop:
read the participant, skip the update if it is already done (a re-run stage), send it with the
participant's etag, and on a transient error back off and start over from a fresh read.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cmms.api.system.v1 import (
    computation_log_entries_pb2,
    computation_log_entries_pb2_grpc,
    computation_participants_pb2,
    computation_participants_pb2_grpc,
    computation_pb2,
    computations_pb2,
    computations_pb2_grpc,
)
from cmms.common.grpc import StatusError
from cmms.common.logging import get_logger
from cmms.duchy.internal_client import call
from cmms.duchy.mill.errors import TRANSIENT_CODES

Participant = computation_pb2.ComputationParticipant
RequisitionParams = Participant.RequisitionParams
Failure = Participant.Failure
StageAttempt = computation_pb2.StageAttempt
LogEntry = computation_log_entries_pb2.ComputationLogEntry
SetResultRequest = computations_pb2.SetComputationResultRequest
Sleep = Callable[[float], Awaitable[None]]
Result = TypeVar("Result")

_log = get_logger(__name__)


class KingdomSystemApi(Protocol):
    async def get_participant(self, name: str) -> Participant: ...

    async def set_requisition_params(
        self, name: str, params: RequisitionParams, etag: str
    ) -> Participant: ...

    async def confirm_participant(self, name: str, etag: str) -> Participant: ...

    async def fail_participant(self, name: str, failure: Failure, etag: str) -> Participant: ...

    async def create_log_entry(self, parent: str, entry: LogEntry) -> None: ...

    async def set_computation_result(self, request: SetResultRequest) -> None: ...


class GrpcKingdomSystemApi:
    """`KingdomSystemApi` over the Kingdom's system API."""

    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 30.0) -> None:
        self._participants = computation_participants_pb2_grpc.ComputationParticipantsStub(channel)
        self._log_entries = computation_log_entries_pb2_grpc.ComputationLogEntriesStub(channel)
        self._computations = computations_pb2_grpc.ComputationsStub(channel)
        self._deadline = deadline_seconds

    async def get_participant(self, name: str) -> Participant:
        request = computation_participants_pb2.GetComputationParticipantRequest(name=name)
        reply: Participant = await call(
            self._participants.GetComputationParticipant(request, timeout=self._deadline)
        )
        return reply

    async def set_requisition_params(
        self, name: str, params: RequisitionParams, etag: str
    ) -> Participant:
        request = computation_participants_pb2.SetParticipantRequisitionParamsRequest(
            name=name, requisition_params=params, etag=etag
        )
        reply: Participant = await call(
            self._participants.SetParticipantRequisitionParams(request, timeout=self._deadline)
        )
        return reply

    async def confirm_participant(self, name: str, etag: str) -> Participant:
        request = computation_participants_pb2.ConfirmComputationParticipantRequest(
            name=name, etag=etag
        )
        reply: Participant = await call(
            self._participants.ConfirmComputationParticipant(request, timeout=self._deadline)
        )
        return reply

    async def fail_participant(self, name: str, failure: Failure, etag: str) -> Participant:
        request = computation_participants_pb2.FailComputationParticipantRequest(
            name=name, failure=failure, etag=etag
        )
        reply: Participant = await call(
            self._participants.FailComputationParticipant(request, timeout=self._deadline)
        )
        return reply

    async def create_log_entry(self, parent: str, entry: LogEntry) -> None:
        request = computation_log_entries_pb2.CreateComputationLogEntryRequest(
            parent=parent, computation_log_entry=entry
        )
        await call(self._log_entries.CreateComputationLogEntry(request, timeout=self._deadline))

    async def set_computation_result(self, request: SetResultRequest) -> None:
        await call(self._computations.SetComputationResult(request, timeout=self._deadline))


@dataclass(frozen=True)
class ParticipantRetry:
    """Tries of one participant update, and the backoff between them (500 ms, x1.5, ±50 %)."""

    max_attempts: int = 3
    initial_seconds: float = 0.5
    multiplier: float = 1.5
    jitter: float = 0.5

    def delay(self, failed_attempts: int, unit_random: float) -> float:
        base = self.initial_seconds * self.multiplier ** (failed_attempts - 1)
        return base * (1 - self.jitter + 2 * self.jitter * unit_random)


def participant_name(global_id: str, duchy_id: str) -> str:
    return f"computations/{global_id}/participants/{duchy_id}"


def timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


class KingdomReporter:
    def __init__(
        self,
        api: KingdomSystemApi,
        duchy_id: str,
        sleep: Sleep,
        *,
        retry: ParticipantRetry | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._api = api
        self._duchy_id = duchy_id
        self._sleep = sleep
        self._retry = retry or ParticipantRetry()
        self._rng = rng or random.Random()

    def participant(self, global_id: str) -> str:
        return participant_name(global_id, self._duchy_id)

    async def set_requisition_params(self, global_id: str, params: RequisitionParams) -> None:
        """Publish this duchy's params, unless an earlier attempt already did."""

        async def update(current: Participant) -> None:
            if current.HasField("requisition_params"):
                return
            await self._api.set_requisition_params(current.name, params, current.etag)

        await self._update_participant(global_id, update)

    async def confirm(self, global_id: str) -> None:
        async def update(current: Participant) -> None:
            if current.state == Participant.READY:
                return
            await self._api.confirm_participant(current.name, current.etag)

        await self._update_participant(global_id, update)

    async def fail(self, global_id: str, failure: Failure) -> None:
        """Fail this duchy's participant; one that already ended counts as failed."""

        async def update(current: Participant) -> None:
            if current.state == Participant.FAILED:
                return
            try:
                await self._api.fail_participant(current.name, failure, current.etag)
            except StatusError as error:
                if error.code != grpc.StatusCode.FAILED_PRECONDITION:
                    raise

        await self._update_participant(global_id, update)

    async def set_result(self, request: SetResultRequest) -> None:
        await self._api.set_computation_result(request)

    async def log_stage_attempt(
        self, global_id: str, mill_id: str, stage_attempt: StageAttempt
    ) -> None:
        """Note at the Kingdom that this mill started a stage attempt (best effort)."""
        message = (
            f"Computation {global_id} at stage {stage_attempt.stage_name}, "
            f"attempt {stage_attempt.attempt_number}"
        )
        await self._log(
            global_id,
            LogEntry(
                participant_child_reference_id=mill_id,
                log_message=message,
                stage_attempt=stage_attempt,
            ),
        )

    async def log_transient_error(
        self,
        global_id: str,
        mill_id: str,
        message: str,
        stage_attempt: StageAttempt,
        error_time: datetime,
    ) -> None:
        """Note a transient error at the Kingdom (best effort)."""
        await self._log(
            global_id,
            LogEntry(
                participant_child_reference_id=mill_id,
                log_message=message,
                stage_attempt=stage_attempt,
                error_details=LogEntry.ErrorDetails(
                    type=LogEntry.ErrorDetails.TRANSIENT, error_time=timestamp(error_time)
                ),
            ),
        )

    async def _log(self, global_id: str, entry: LogEntry) -> None:
        # A log entry never changes state, so failing to write one is only logged here.
        try:
            await self._api.create_log_entry(self.participant(global_id), entry)
        except StatusError as error:
            _log.warning("could not log to the Kingdom", computation=global_id, error=str(error))

    async def _update_participant(
        self, global_id: str, update: Callable[[Participant], Awaitable[None]]
    ) -> None:
        name = self.participant(global_id)
        attempt = 1
        while True:
            try:
                current = await self._api.get_participant(name)
                await update(current)
                return
            except StatusError as error:
                if error.code not in TRANSIENT_CODES or attempt >= self._retry.max_attempts:
                    raise
                await self._sleep(self._retry.delay(attempt, self._rng.random()))
                attempt += 1
