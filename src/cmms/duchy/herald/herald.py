"""The Herald's streaming loop (duchy_internals §7.1).

Read the stored continuation token, stream the Kingdom's active computations after it, process
each one, and store tokens as work completes (`TokenCheckpoints`). Processing is concurrent up to
a limit, except that updates of one computation are processed one after the other, in stream
order. When the Kingdom ends the stream (it does so every few minutes) or the stream fails with
a transient error, reconnect from the latest position; too many failures in a row end the
Herald with an error, so that its supervisor restarts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import grpc

from cmms.common.grpc import StatusError
from cmms.common.logging import get_logger
from cmms.duchy.herald.checkpoints import Pending, TokenCheckpoints
from cmms.duchy.herald.kingdom import Computation, KingdomComputations, StreamedComputation
from cmms.duchy.herald.local import ContinuationTokenStore
from cmms.duchy.herald.processor import Outcome
from cmms.duchy.herald.retry import Backoff, Pacer, retrying

STREAM_RETRY_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
)
Item = TypeVar("Item")
_log = get_logger(__name__)


class Processor(Protocol):
    async def process(self, computation: Computation) -> Outcome: ...


# Told about every computation once it is processed and its position recorded.
Observer = Callable[[Computation, Outcome], Awaitable[None] | None]


class HeraldStreamError(Exception):
    """The Kingdom's stream kept failing, or failed in a way that retrying cannot fix."""


@dataclass(frozen=True)
class StreamPolicy:
    """At most `max_concurrency` computations in flight. `reconnect` paces reconnections after
    failures (`max_attempts` failures in a row end the Herald); after a normal end of the stream
    the Herald waits `reconnect_after_end_seconds` first, so a server that ends calls early is
    not polled in a tight loop."""

    max_concurrency: int = 5
    reconnect: Backoff = field(default_factory=Backoff)
    reconnect_after_end_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {self.max_concurrency}")


class Herald:
    def __init__(
        self,
        kingdom: KingdomComputations,
        tokens: ContinuationTokenStore,
        processor: Processor,
        *,
        policy: StreamPolicy | None = None,
        pacer: Pacer | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._kingdom = kingdom
        self._tokens = tokens
        self._processor = processor
        self._policy = policy or StreamPolicy()
        base = pacer or Pacer()
        # One clock and randomness for everything; the stream has its own backoff policy.
        self._pacer = base
        self._stream_pacer = Pacer(self._policy.reconnect, base.sleep, base.unit_random)
        self._observer = observer

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Follow the Kingdom until `stop` is set; in-flight work is finished before returning."""
        stop = stop or asyncio.Event()
        # The internal API may not be up yet (the read waits for it); a stop must not wait too.
        stored = await _unless_stopped(retrying(self._tokens.get, self._pacer), stop)
        if stored is None:
            return
        checkpoints = TokenCheckpoints(self._tokens, stored, self._pacer)
        failures = 0
        while not stop.is_set():
            if not checkpoints.latest:
                # Nothing stored or processed yet: another Herald may have stored one meanwhile.
                checkpoints.latest = await retrying(self._tokens.get, self._pacer)
            error = await self._follow_stream(checkpoints, stop)
            if error is None:
                failures = 0
                delay = self._policy.reconnect_after_end_seconds
            else:
                failures += 1
                if failures >= self._policy.reconnect.max_attempts:
                    raise HeraldStreamError(
                        f"the Kingdom stream failed {failures} times in a row"
                    ) from error
                _log.warning("stream failed; reconnecting", error=str(error), failures=failures)
                delay = self._policy.reconnect.delay(failures, self._pacer.unit_random())
            await _sleep_unless_stopped(self._pacer.sleep, delay, stop)
        _log.info("herald stopped", continuation_token=checkpoints.latest)

    async def _follow_stream(
        self, checkpoints: TokenCheckpoints, stop: asyncio.Event
    ) -> StatusError | None:
        """One stream call; returns its retryable error, once every started computation is done."""
        slots = asyncio.Semaphore(self._policy.max_concurrency)
        last_of: dict[str, asyncio.Task[None]] = {}
        stream_error: StatusError | None = None
        stream = self._kingdom.stream_active_computations(checkpoints.latest)
        try:
            async with asyncio.TaskGroup() as group:
                try:
                    async for item in _until_stopped(stream, stop):
                        await slots.acquire()
                        entry = checkpoints.add_pending(item.continuation_token)
                        key = item.computation.name
                        task = group.create_task(
                            self._handle(item, entry, last_of.get(key), slots, checkpoints)
                        )
                        last_of[key] = task
                        task.add_done_callback(
                            lambda done, key=key: (
                                last_of.pop(key, None)  # type: ignore[misc]
                                if last_of.get(key) is done
                                else None
                            )
                        )
                except StatusError as error:
                    stream_error = error
        except BaseExceptionGroup as group_error:
            # A token that cannot be stored: stop rather than redo work forever.
            raise group_error.exceptions[0] from group_error
        if stream_error is not None and stream_error.code not in STREAM_RETRY_CODES:
            raise HeraldStreamError(f"the Kingdom stream failed: {stream_error}") from stream_error
        return stream_error

    async def _handle(
        self,
        item: StreamedComputation,
        entry: Pending,
        previous: asyncio.Task[None] | None,
        slots: asyncio.Semaphore,
        checkpoints: TokenCheckpoints,
    ) -> None:
        try:
            if previous is not None:
                # Earlier updates of the same computation first; their errors are the group's.
                await asyncio.wait([previous])
            outcome = await self._processor.process(item.computation)
        finally:
            slots.release()
        await checkpoints.mark_processed(entry)
        if self._observer is not None:
            notified = self._observer(item.computation, outcome)
            if notified is not None:
                await notified


async def _until_stopped(items: AsyncIterator[Item], stop: asyncio.Event) -> AsyncIterator[Item]:
    """`items` until they end or `stop` is set; the source is closed either way."""
    stopped = asyncio.ensure_future(stop.wait())
    following: asyncio.Future[Item] | None = None
    try:
        while not stop.is_set():
            following = asyncio.ensure_future(anext(items))
            await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                return
            try:
                item = following.result()
            except StopAsyncIteration:
                return
            following = None
            yield item
    finally:
        stopped.cancel()
        if following is not None and not following.done():
            # The source is mid-read: interrupt it before closing it.
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()


async def _unless_stopped(work: Awaitable[Item], stop: asyncio.Event) -> Item | None:
    """The result of `work`, or `None` if `stop` is set first (then `work` is cancelled)."""
    running = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not running.done():
            running.cancel()
        await asyncio.gather(running, stopped, return_exceptions=True)
    if running.cancelled():
        return None
    return running.result()


async def _sleep_unless_stopped(
    sleep: Callable[[float], Awaitable[None]], seconds: float, stop: asyncio.Event
) -> None:
    napping = asyncio.ensure_future(sleep(seconds))
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({napping, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in (napping, stopped):
            waiter.cancel()
        await asyncio.gather(napping, stopped, return_exceptions=True)
