"""A running duchy server with the resources it owns (database engine, blob store, channels).

`start`/`stop` (or `async with`) for tests; `run` serves until SIGTERM/SIGINT, drains, then
releases the resources.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from cmms.common.grpc import BoundPorts, SecureServer, run_until_signal

Closer = Callable[[], Awaitable[object]]


class DuchyDeployable:
    def __init__(self, server: SecureServer, closers: Sequence[Closer] = ()) -> None:
        self.server = server
        self._closers = list(closers)

    @property
    def ports(self) -> BoundPorts:
        return self.server.ports

    async def start(self) -> BoundPorts:
        return await self.server.start()

    async def stop(self) -> None:
        try:
            await self.server.stop()
        finally:
            await self._close()

    async def run(self, started: Callable[[BoundPorts], None] | None = None) -> None:
        try:
            await run_until_signal(self.server, started=started)
        finally:
            await self._close()

    async def _close(self) -> None:
        # Reverse order: what was opened last (clients of earlier resources) closes first.
        closers, self._closers = self._closers, []
        for close in reversed(closers):
            await close()

    async def __aenter__(self) -> DuchyDeployable:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
