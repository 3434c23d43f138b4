"""Bounded exponential backoff with jitter, and a retry loop that uses it.

Sleep and jitter are injected so tests never wait on a real clock.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from cmms.duchy.herald.errors import is_retryable

Result = TypeVar("Result")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Backoff:
    """`max_attempts` tries; before try n+1 wait `initial * multiplier**(n-1)` seconds, capped at
    `max_delay`, scaled by a jitter factor in [1 - jitter, 1 + jitter)."""

    max_attempts: int = 5
    initial_seconds: float = 0.5
    multiplier: float = 1.5
    max_delay_seconds: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.initial_seconds < 0 or self.max_delay_seconds < 0:
            raise ValueError("backoff delays cannot be negative")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], got {self.jitter}")

    def delay(self, failed_attempts: int, unit_random: float) -> float:
        """The wait after `failed_attempts` failures; `unit_random` is uniform in [0, 1)."""
        base = min(
            self.max_delay_seconds,
            self.initial_seconds * self.multiplier ** max(0, failed_attempts - 1),
        )
        return base * (1 - self.jitter + 2 * self.jitter * unit_random)


@dataclass(frozen=True)
class Pacer:
    """A backoff policy together with the sleep and randomness it runs on."""

    backoff: Backoff = Backoff()
    sleep: Sleep = asyncio.sleep
    unit_random: Callable[[], float] = random.random

    async def pause(self, failed_attempts: int) -> None:
        await self.sleep(self.backoff.delay(failed_attempts, self.unit_random()))


class AttemptsExhaustedError(Exception):
    """Every try failed with a retryable error; `last` is the final one."""

    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"{attempts} attempts failed; last: {last}")
        self.attempts = attempts
        self.last = last


async def retrying(operation: Callable[[], Awaitable[Result]], pacer: Pacer) -> Result:
    """Run `operation` until it succeeds, raises a permanent error (re-raised as is), or has
    failed retryably `max_attempts` times (then `AttemptsExhaustedError`)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except Exception as error:
            if not is_retryable(error):
                raise
            if attempt >= pacer.backoff.max_attempts:
                raise AttemptsExhaustedError(attempt, error) from error
            await pacer.pause(attempt)
