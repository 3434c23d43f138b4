"""The computations cleaner: purges finished computations older than a time to live.

Run periodically (a Kubernetes CronJob, hourly). For every protocol it sends one
`PurgeComputations` request naming that protocol's terminal stages; the internal API deletes the
selected computations and their blobs. A dry run only reports what would go. A time to live of
zero turns the cleaner off.

Unlike the reference, which purges only LLv2 computations, every protocol is purged: otherwise
reach-only LLv2, HMSS and TrusTee computations and their blobs would be kept forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import Field

from cmms.api.internal.duchy.v1 import computations_service_pb2, computations_service_pb2_grpc
from cmms.common.durations import Duration
from cmms.common.grpc import ChannelSettings, secure_channel
from cmms.common.grpc.settings import GrpcClientSettings
from cmms.common.logging import get_logger
from cmms.duchy.stage_messages import computation_stage
from cmms.protocols.stages import ProtocolType, stage_graphs

_log = get_logger(__name__)


@dataclass(frozen=True)
class PurgeResult:
    count: int
    # Global ids of the computations a dry run would purge (a sample; empty when forced).
    sample: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProtocolPurge:
    protocol: ProtocolType
    count: int
    sample: tuple[str, ...]


@dataclass(frozen=True)
class CleanerReport:
    dry_run: bool
    updated_before: datetime | None
    purges: tuple[ProtocolPurge, ...]

    @property
    def total(self) -> int:
        return sum(p.count for p in self.purges)


class ComputationPurger(Protocol):
    async def purge(
        self,
        protocol: ProtocolType,
        stages: Sequence[int],
        updated_before: datetime,
        force: bool,
    ) -> PurgeResult: ...


class CleanerError(RuntimeError):
    """Purging failed for some protocols (the others were still purged)."""


class GrpcComputationPurger:
    """`ComputationPurger` over the internal `Computations.PurgeComputations` RPC."""

    def __init__(self, channel: grpc.aio.Channel, deadline_seconds: float = 300.0) -> None:
        self._stub = computations_service_pb2_grpc.ComputationsStub(channel)
        self._deadline = deadline_seconds

    async def purge(
        self,
        protocol: ProtocolType,
        stages: Sequence[int],
        updated_before: datetime,
        force: bool,
    ) -> PurgeResult:
        cutoff = Timestamp()
        cutoff.FromDatetime(updated_before)
        request = computations_service_pb2.PurgeComputationsRequest(
            updated_before=cutoff,
            stages=[computation_stage(protocol, stage) for stage in stages],
            force=force,
        )
        reply: computations_service_pb2.PurgeComputationsResponse = (
            await self._stub.PurgeComputations(request, timeout=self._deadline)
        )
        return PurgeResult(reply.purge_count, tuple(reply.purge_sample))


async def clean_computations(
    purger: ComputationPurger,
    time_to_live: timedelta,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> CleanerReport:
    """Purge (or, in a dry run, count) terminal computations last updated before now - TTL."""
    if time_to_live <= timedelta(0):
        _log.info("computations cleaner is off: the time to live is 0")
        return CleanerReport(dry_run, None, ())
    updated_before = (now or datetime.now(UTC)) - time_to_live
    purges: list[ProtocolPurge] = []
    failures: list[str] = []
    for number, graph in sorted(stage_graphs().items()):
        protocol = ProtocolType(number)
        try:
            result = await purger.purge(
                protocol, sorted(graph.terminal_stages), updated_before, force=not dry_run
            )
        except Exception as error:
            # One protocol's failure should not keep the others' old data around.
            _log.exception("purging computations failed", protocol=protocol.name)
            failures.append(f"{protocol.name}: {_describe(error)}")
            continue
        purges.append(ProtocolPurge(protocol, result.count, result.sample))
        _log.info(
            "computations would be purged" if dry_run else "computations purged",
            protocol=protocol.name,
            count=result.count,
            sample=list(result.sample),
            updated_before=updated_before.isoformat(),
        )
    if failures:
        raise CleanerError("; ".join(failures))
    return CleanerReport(dry_run, updated_before, tuple(purges))


def _describe(error: Exception) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name} {error.details() or ''}".strip()
    return str(error) or type(error).__name__


class CleanerSettings(GrpcClientSettings):
    """Settings of `cmms duchy cleaner`: every field is a flag and a `CMMS_<FIELD>` variable."""

    internal_api_target: str = Field(description="host:port of the duchy's internal API")
    internal_api_cert_host: str | None = Field(
        default=None, description="TLS name of the internal API when the target's host differs"
    )
    computations_time_to_live: Duration = Field(
        default=timedelta(days=90),
        ge=timedelta(0),
        description="purge computations finished longer ago than this (0 turns the cleaner off)",
    )
    dry_run: bool = Field(default=False, description="only report what would be purged")
    # Purging many computations with their blobs takes a while.
    rpc_deadline: Duration = Field(
        default=timedelta(minutes=5), gt=timedelta(0), description="deadline of each purge call"
    )

    def internal_api_channel(self) -> grpc.aio.Channel:
        return secure_channel(
            self.internal_api_target,
            self.client_tls(),
            ChannelSettings(target_name_override=self.internal_api_cert_host),
        )


async def run_cleaner(settings: CleanerSettings) -> CleanerReport:
    """One cleaning pass with the settings' channel (closed afterwards)."""
    channel = settings.internal_api_channel()
    try:
        purger = GrpcComputationPurger(channel, settings.rpc_deadline.total_seconds())
        return await clean_computations(
            purger, settings.computations_time_to_live, dry_run=settings.dry_run
        )
    finally:
        await channel.close()
