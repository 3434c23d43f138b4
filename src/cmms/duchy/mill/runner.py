"""`StageRunner`: one stage attempt of a claimed computation, start to end (duchy_internals §8).

It checks the attempt limit, dispatches on (stage, role) to the protocol's handler, and settles
any failure: a lost lock stops quietly; a transient error re-enqueues the computation with a
backoff delay (only from the stage it was processing and only while this mill owns it,
pitfall 14); anything else fails the computation at the Kingdom and locally.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from cmms.api.system.v1 import computation_pb2
from cmms.common.grpc import StatusError
from cmms.common.logging import get_logger
from cmms.duchy.mill.context import CompletedReason, MillOptions, MillServices, StageContext
from cmms.duchy.mill.errors import (
    LockLostError,
    PermanentError,
    describe,
    is_transient,
)
from cmms.duchy.mill.handlers import HandlerTable
from cmms.duchy.mill.kingdom import Failure, StageAttempt, timestamp
from cmms.duchy.mill.retry import EnqueueBackoff
from cmms.duchy.mill.stats import AttemptKey
from cmms.duchy.mill.tokens import (
    Token,
    graph_of,
    holds_lock,
    protocol_of,
    role_of,
    stage_of,
)
from cmms.protocols.stages import ProtocolType

_log = get_logger(__name__)


class StageRunner:
    def __init__(
        self,
        services: MillServices,
        options: MillOptions,
        tables: Mapping[ProtocolType, HandlerTable],
        backoff: EnqueueBackoff | None = None,
    ) -> None:
        self._services = services
        self._options = options
        self._tables = dict(tables)
        self._backoff = backoff or EnqueueBackoff()

    # ------------------------------------------------------------------------- entry points

    async def process_claimed(self, global_id: str, version: int) -> bool:
        """Process the computation the scheduler claimed for this mill, if it is still ours.

        False when the claim went stale (someone changed the computation, or the lock lapsed).
        """
        token = await self._services.computations.get_token(global_id)
        if token.version != version:
            await self._log_transient(token, f"version changed from {version} to {token.version}")
            return False
        if not holds_lock(token, self._options.mill_id, self._services.clock()):
            await self._log_transient(token, f"mill {self._options.mill_id} does not hold the lock")
            return False
        await self.process(token)
        return True

    async def claim_and_process(self, protocol: ProtocolType) -> bool:
        """Claim and process the next computation of `protocol`; False when there is none."""
        table = self._table(protocol)
        token = await self._services.computations.claim_work(
            protocol,
            self._options.mill_id,
            self._options.lock_duration,
            table.prioritized_stages,
        )
        if token is None:
            return False
        await self.process(token)
        return True

    async def process(self, token: Token) -> None:
        """Run the current stage of a computation this mill has claimed."""
        log = _log.bind(
            computation=token.global_computation_id,
            stage=graph_of(token).stage(stage_of(token)).name,
            attempt=token.attempt,
        )
        key = AttemptKey.of(token)
        if token.attempt > self._options.maximum_attempts:
            await self._fail(token, f"too many failed attempts ({token.attempt})")
            return
        started = time.perf_counter()
        outcome = "succeeded"
        context: StageContext | None = None
        try:
            context = self._context(token)
            handler = self._table(context.protocol).lookup(context.stage, context.role)
            if handler is None:
                raise PermanentError(
                    f"nothing to do in {context.stage_name} for role {context.role}"
                )
            log.info("stage started")
            await self._services.kingdom.log_stage_attempt(
                token.global_computation_id, self._options.mill_id, self._stage_attempt(token)
            )
            await handler(context)
            log.info("stage done")
        except Exception as error:
            outcome = await self._settle(context, token, error)
        finally:
            if context is not None:
                await context.record_crypto_time()
            await self._services.stats.stage_finished(key, time.perf_counter() - started, outcome)

    # ------------------------------------------------------------------------- failures

    async def _settle(self, context: StageContext | None, claimed: Token, error: Exception) -> str:
        log = _log.bind(computation=claimed.global_computation_id, error=describe(error))
        if isinstance(error, LockLostError):
            log.warning("work lock lost; stopping without further changes")
            return "lock_lost"
        stage = stage_of(claimed)
        try:
            latest = await self._services.computations.get_token(claimed.global_computation_id)
        except StatusError as read_error:
            # Nothing more can be done safely; the lock lapses and the work is claimed again.
            log.error("cannot re-read the computation after a failure", read_error=str(read_error))
            return "unsettled"
        if graph_of(latest).is_terminal(stage_of(latest)):
            log.info("computation already ended")
            return "ended"
        if latest.lock_owner not in ("", self._options.mill_id):
            log.warning("another worker owns the computation now", owner=latest.lock_owner)
            return "lock_lost"
        if latest.attempt > self._options.maximum_attempts:
            await self._fail(
                latest, f"too many failed attempts ({latest.attempt}): {describe(error)}"
            )
            return "failed"
        if is_transient(error):
            await self._retry_later(latest, stage, error)
            return "transient"
        log.error("stage failed permanently")
        await self._fail(latest, describe(error))
        return "failed"

    async def _retry_later(self, latest: Token, processed_stage: int, error: Exception) -> None:
        log = _log.bind(computation=latest.global_computation_id, error=describe(error))
        await self._log_transient(latest, f"transient error: {describe(error)}")
        # Only re-queue the stage this mill was running, and only while it holds the lock: a
        # computation that already moved on (say, into a WAIT stage) must stay where it is.
        if stage_of(latest) != processed_stage or latest.lock_owner != self._options.mill_id:
            log.info("computation moved on; not re-enqueued")
            return
        delay = self._backoff.delay_seconds(latest.attempt)
        log.warning(
            "transient error; retrying later",
            stage=graph_of(latest).stage(processed_stage).name,
            attempt=latest.attempt,
            delay_seconds=delay,
        )
        await self._services.computations.enqueue(latest, delay, self._options.mill_id)

    async def _fail(self, token: Token, message: str) -> None:
        """Fail the computation at the Kingdom, then end it locally as FAILED."""
        now = self._services.clock()
        failure = Failure(
            participant_child_reference_id=self._options.mill_id,
            error_message=message,
            error_time=timestamp(now),
            stage_attempt=self._stage_attempt(token),
        )
        await self._services.kingdom.fail(token.global_computation_id, failure)
        graph = graph_of(token)
        ending = next(iter(graph.terminal_stages))
        await self._services.computations.finish(token, ending, CompletedReason.FAILED)
        _log.error("computation failed", computation=token.global_computation_id, reason=message)

    # ------------------------------------------------------------------------- helpers

    def _table(self, protocol: ProtocolType) -> HandlerTable:
        table = self._tables.get(protocol)
        if table is None:
            raise PermanentError(f"this mill runs no {protocol.name} stages")
        return table

    def _context(self, token: Token) -> StageContext:
        return StageContext(
            token,
            protocol_of(token),
            stage_of(token),
            role_of(token),
            self._services,
            self._options,
        )

    def _stage_attempt(self, token: Token) -> computation_pb2.StageAttempt:
        stage = stage_of(token)
        return StageAttempt(
            stage=stage,
            stage_name=graph_of(token).stage(stage).name,
            stage_start_time=timestamp(self._services.clock()),
            attempt_number=token.attempt,
        )

    async def _log_transient(self, token: Token, message: str) -> None:
        await self._services.kingdom.log_transient_error(
            token.global_computation_id,
            self._options.mill_id,
            message,
            self._stage_attempt(token),
            self._services.clock(),
        )
