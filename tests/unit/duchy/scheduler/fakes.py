"""In-memory claim source and recording launcher for scheduler tests."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cmms.duchy.scheduler import ClaimedWork, MillClaim, MillType
from cmms.protocols.stages import ProtocolType


@dataclass(frozen=True)
class ClaimCall:
    computation_type: ProtocolType
    owner: str
    lock_duration: timedelta
    prioritized_stages: tuple[int, ...]


@dataclass
class FakeClaimSource:
    """Claimable computations per protocol, handed out oldest first (each at most once)."""

    queues: dict[ProtocolType, deque[ClaimedWork]] = field(default_factory=dict)
    calls: list[ClaimCall] = field(default_factory=list)

    def add(self, protocol: ProtocolType, global_id: str, version: int = 1) -> None:
        self.queues.setdefault(protocol, deque()).append(ClaimedWork(global_id, version))

    async def claim_work(
        self,
        computation_type: ProtocolType,
        owner: str,
        lock_duration: timedelta,
        prioritized_stages: Sequence[int],
    ) -> ClaimedWork | None:
        self.calls.append(
            ClaimCall(computation_type, owner, lock_duration, tuple(prioritized_stages))
        )
        queue = self.queues.get(computation_type)
        return queue.popleft() if queue else None


@dataclass
class RecordingLauncher:
    """Remembers launched claims; a test finishes jobs with `finish`."""

    launched: list[tuple[MillType, MillClaim]] = field(default_factory=list)
    finished: set[str] = field(default_factory=set)
    cleanups: list[MillType] = field(default_factory=list)
    closed: bool = False

    async def launch(self, mill_type: MillType, claim: MillClaim) -> None:
        self.launched.append((mill_type, claim))

    async def active_jobs(self, mill_type: MillType) -> list[str]:
        return [
            claim.mill_id
            for kind, claim in self.launched
            if kind is mill_type and claim.mill_id not in self.finished
        ]

    async def clean_up(self, mill_type: MillType) -> list[str]:
        self.cleanups.append(mill_type)
        return []

    async def close(self) -> None:
        self.closed = True

    def finish(self, job: str) -> None:
        self.finished.add(job)


def pod_template(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "mill",
                        "image": "cmms:latest",
                        "command": ["cmms", "duchy", "mill"],
                        "args": ["--duchy-name=worker1"],
                    },
                    {"name": "sidecar", "image": "proxy:1", "args": ["--quiet"]},
                ],
            },
        },
    }
