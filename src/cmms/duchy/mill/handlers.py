"""Handler tables: what a protocol does in each (stage, role) it works in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from cmms.duchy.mill.context import StageContext
from cmms.protocols.stages import ProtocolType, stage_graph

Handler = Callable[[StageContext], Awaitable[None]]


@dataclass(frozen=True)
class HandlerTable:
    protocol: ProtocolType
    handlers: Mapping[tuple[int, int], Handler]

    def lookup(self, stage: int, role: int) -> Handler | None:
        return self.handlers.get((stage, role))

    @property
    def prioritized_stages(self) -> tuple[int, ...]:
        """Stages claimed first: new computations, so their params reach the Kingdom quickly."""
        return stage_graph(self.protocol).initial_stages
