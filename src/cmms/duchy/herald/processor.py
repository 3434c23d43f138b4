"""What the Herald does with one streamed computation (duchy_internals §7.2, kingdom.md §2.7).

| Kingdom state                     | action                                                     |
|-----------------------------------|------------------------------------------------------------|
| PENDING_REQUISITION_PARAMS        | create the local computation (its starter validates)       |
| PENDING_PARTICIPANT_CONFIRMATION  | Liquid Legions: record the ring and nonces, queue confirm  |
| PENDING_COMPUTATION               | start the duchies that wait for it                         |
| FAILED / CANCELLED                | finish the local computation FAILED / CANCELED, if any     |
| SUCCEEDED                         | nothing                                                    |

Afterwards a computation whose state is configured as deletable is deleted locally.

Transient gRPC errors and "not ready yet" are retried with backoff. A permanent error, or running
out of tries, fails the computation: at the Kingdom (FailComputationParticipant, with the reason
in the message the consumer sees) unless it has ended there already, and locally.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.common.logging import get_logger
from cmms.duchy.herald.confirmation import Confirmer
from cmms.duchy.herald.creation import ComputationCreator
from cmms.duchy.herald.errors import is_retryable
from cmms.duchy.herald.kingdom import Failure, KingdomComputations
from cmms.duchy.herald.local import LocalComputations
from cmms.duchy.herald.names import global_computation_id, participant_name
from cmms.duchy.herald.retry import Pacer, retrying
from cmms.duchy.herald.start import ComputationStarter
from cmms.duchy.herald.termination import delete_locally, finish_locally

Computation = computation_pb2.Computation
State = computation_pb2.Computation.State
Reason = computation_details_pb2.ComputationDetails.CompletedReason
ReasonValue: TypeAlias = computation_details_pb2.ComputationDetails.CompletedReason.ValueType
TERMINAL_STATES = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
_log = get_logger(__name__)


class Outcome(enum.Enum):
    DONE = "done"  # the state's action ran (possibly finding nothing to do)
    IGNORED = "ignored"  # a state the Herald has no action for
    FAILED = "failed"  # the action failed for good and the computation was failed


@dataclass(frozen=True)
class Identity:
    duchy_id: str
    # Names this Herald in failures it reports (the pod's host name).
    herald_id: str


class ComputationProcessor:
    def __init__(
        self,
        identity: Identity,
        kingdom: KingdomComputations,
        local: LocalComputations,
        creator: ComputationCreator,
        confirmer: Confirmer,
        starter: ComputationStarter,
        *,
        pacer: Pacer | None = None,
        deletable_states: frozenset[int] = frozenset(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not deletable_states <= TERMINAL_STATES:
            raise ValueError("only terminal states can be deletable")
        self._identity = identity
        self._kingdom = kingdom
        self._local = local
        self._creator = creator
        self._confirmer = confirmer
        self._starter = starter
        self._pacer = pacer or Pacer()
        self._deletable = deletable_states
        self._clock = clock

    async def process(self, computation: Computation) -> Outcome:
        """Handle one streamed computation; never raises for its own failures."""
        log = _log.bind(computation=computation.name, state=State.Name(computation.state))
        action = self._action(computation.state)
        if action is None:
            log.warning("no action for this state")
            return Outcome.IGNORED
        attempt = 0
        while True:
            attempt += 1
            try:
                await action(computation)
                break
            except Exception as error:
                if is_retryable(error) and attempt < self._pacer.backoff.max_attempts:
                    log.info("retrying", attempt=attempt, error=str(error))
                    await self._pacer.pause(attempt)
                    continue
                log.exception("giving up", attempts=attempt)
                await self._fail(computation, f"Herald failed after {attempt} attempts. {error}")
                return Outcome.FAILED
        if computation.state in self._deletable:
            await self._delete(computation)
        return Outcome.DONE

    def _action(self, state: int) -> Callable[[Computation], Awaitable[object]] | None:
        actions: dict[int, Callable[[Computation], Awaitable[object]]] = {
            State.PENDING_REQUISITION_PARAMS: self._creator.create,
            State.PENDING_PARTICIPANT_CONFIRMATION: self._confirmer.confirm,
            State.PENDING_COMPUTATION: self._starter.start,
            State.FAILED: self._finish_as(Reason.FAILED),
            State.CANCELLED: self._finish_as(Reason.CANCELED),
            State.SUCCEEDED: _nothing,
        }
        return actions.get(state)

    def _finish_as(self, reason: ReasonValue) -> Callable[[Computation], Awaitable[object]]:
        async def finish(computation: Computation) -> bool:
            gid = global_computation_id(computation.name)
            return await finish_locally(self._local, gid, reason)

        return finish

    async def _fail(self, computation: Computation, message: str) -> None:
        log = _log.bind(computation=computation.name)
        if computation.state not in TERMINAL_STATES:
            failure = Failure(
                participant_child_reference_id=self._identity.herald_id, error_message=message
            )
            failure.error_time.FromDatetime(self._clock())
            name = participant_name(computation.name, self._identity.duchy_id)
            try:
                await retrying(lambda: self._kingdom.fail_participant(name, failure), self._pacer)
            except Exception as error:
                # Typically FAILED_PRECONDITION: the measurement has ended meanwhile.
                log.warning("could not fail the participant at the Kingdom", error=str(error))
        try:
            gid = global_computation_id(computation.name)
            await retrying(lambda: finish_locally(self._local, gid, Reason.FAILED), self._pacer)
        except Exception as error:
            log.warning("could not fail the local computation", error=str(error))

    async def _delete(self, computation: Computation) -> None:
        gid = global_computation_id(computation.name)
        try:
            await retrying(lambda: delete_locally(self._local, gid), self._pacer)
        except Exception as error:
            _log.warning("could not delete", computation=computation.name, error=str(error))


async def _nothing(computation: Computation) -> None:
    return None
