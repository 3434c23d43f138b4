"""The in-process change feed: writers publish after each commit, streams wait on it.

Shared by every backend. It only spans one process: streams still poll, so a write committed by
another Kingdom replica is seen at the next poll instead of at once.
"""

from __future__ import annotations

import asyncio


class ChangeFeed:
    """A version number bumped after each committed write, and a way to wait for the next one."""

    def __init__(self) -> None:
        self._version = 0
        self._event = asyncio.Event()
        self._waiters = 0

    @property
    def version(self) -> int:
        return self._version

    @property
    def waiters(self) -> int:
        """How many callers are blocked in `wait_for_change` right now."""
        return self._waiters

    def publish(self) -> None:
        self._version += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait_for_change(self, seen_version: int, timeout: float) -> bool:
        """True once a write newer than `seen_version` committed; False after `timeout` seconds."""
        if self._version != seen_version:
            return True
        self._waiters += 1
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._waiters -= 1
        return True
