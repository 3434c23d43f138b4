"""Wake-ups for `Computations.AwaitWork`: a change counter that waiters can sleep on.

A change is any write that may make a computation claimable. Changes are counted per server
process; the marker handed to clients carries a random instance id as well, so a marker from
another replica or from before a restart is never mistaken for this server's, and the waiter
then just waits for the next change (or its timeout), as a plain poll would.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class AwaitOutcome:
    change: str
    changed: bool


class WorkSignal:
    def __init__(self) -> None:
        self._instance = secrets.token_hex(8)
        self._count = 0
        self._event = asyncio.Event()

    @property
    def marker(self) -> str:
        return f"{self._instance}:{self._count}"

    def notify(self) -> None:
        """Record a change and wake every waiter."""
        self._count += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, since: str, timeout_seconds: float) -> AwaitOutcome:
        """Return at once if this server changed after `since`, else at the next change or
        when `timeout_seconds` have passed."""
        if self._is_mine(since) and since != self.marker:
            return AwaitOutcome(self.marker, True)
        try:
            await asyncio.wait_for(self._event.wait(), timeout=timeout_seconds)
        except TimeoutError:
            return AwaitOutcome(self.marker, False)
        return AwaitOutcome(self.marker, True)

    def _is_mine(self, marker: str) -> bool:
        instance, _, count = marker.partition(":")
        return instance == self._instance and count.isdigit() and int(count) <= self._count
