"""The computations cleaner against a fake internal API client, and its gRPC client on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from cmms.api.internal.duchy.v1 import computations_service_pb2, computations_service_pb2_grpc
from cmms.duchy.cleaner import (
    CleanerError,
    GrpcComputationPurger,
    PurgeResult,
    clean_computations,
)
from cmms.protocols.stages import ProtocolType, stage_graph

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@dataclass
class Computation:
    global_id: str
    protocol: ProtocolType
    stage: int
    updated: datetime


@dataclass
class FakeInternalApi:
    """Computations in memory; purging deletes the matching ones (unless it is a dry run)."""

    computations: list[Computation] = field(default_factory=list)
    requests: list[tuple[ProtocolType, tuple[int, ...], datetime, bool]] = field(
        default_factory=list
    )
    failing: set[ProtocolType] = field(default_factory=set)

    async def purge(
        self, protocol: ProtocolType, stages: Sequence[int], updated_before: datetime, force: bool
    ) -> PurgeResult:
        self.requests.append((protocol, tuple(stages), updated_before, force))
        if protocol in self.failing:
            raise ConnectionError("internal API away")
        chosen = [
            c
            for c in self.computations
            if c.protocol is protocol and c.stage in stages and c.updated <= updated_before
        ]
        if force:
            self.computations = [c for c in self.computations if c not in chosen]
            return PurgeResult(len(chosen))
        return PurgeResult(len(chosen), tuple(c.global_id for c in chosen))


def complete(protocol: ProtocolType) -> int:
    (stage,) = stage_graph(protocol).terminal_stages
    return stage


def fixture_computations() -> list[Computation]:
    old, recent = NOW - timedelta(days=100), NOW - timedelta(days=10)
    running = stage_graph(ProtocolType.LIQUID_LEGIONS_V2).initial_stages[0]
    return [
        Computation(
            "llv2-old",
            ProtocolType.LIQUID_LEGIONS_V2,
            complete(ProtocolType.LIQUID_LEGIONS_V2),
            old,
        ),
        Computation(
            "llv2-recent",
            ProtocolType.LIQUID_LEGIONS_V2,
            complete(ProtocolType.LIQUID_LEGIONS_V2),
            recent,
        ),
        Computation("llv2-old-running", ProtocolType.LIQUID_LEGIONS_V2, running, old),
        Computation(
            "ro-old",
            ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2,
            complete(ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2),
            old,
        ),
        Computation(
            "hmss-old",
            ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE,
            complete(ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE),
            old,
        ),
        Computation("trustee-old", ProtocolType.TRUS_TEE, complete(ProtocolType.TRUS_TEE), old),
    ]


async def test_every_protocol_is_purged_with_its_terminal_stages() -> None:
    api = FakeInternalApi(fixture_computations())

    report = await clean_computations(api, timedelta(days=90), now=NOW)

    assert [c.global_id for c in api.computations] == ["llv2-recent", "llv2-old-running"]
    assert [(p.protocol, p.count) for p in report.purges] == [
        (ProtocolType.LIQUID_LEGIONS_V2, 1),
        (ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2, 1),
        (ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE, 1),
        (ProtocolType.TRUS_TEE, 1),
    ]
    assert report.total == 4 and not report.dry_run
    # One request per protocol, each naming only that protocol's terminal stages.
    for protocol, stages, updated_before, force in api.requests:
        assert stages == tuple(sorted(stage_graph(protocol).terminal_stages))
        assert updated_before == NOW - timedelta(days=90) and force


async def test_a_dry_run_reports_and_deletes_nothing() -> None:
    api = FakeInternalApi(fixture_computations())

    report = await clean_computations(api, timedelta(days=90), dry_run=True, now=NOW)

    assert len(api.computations) == 6
    assert not any(force for *_, force in api.requests)
    assert report.dry_run and report.total == 4
    assert {s for p in report.purges for s in p.sample} == {
        "llv2-old",
        "ro-old",
        "hmss-old",
        "trustee-old",
    }


async def test_a_time_to_live_of_zero_does_nothing() -> None:
    api = FakeInternalApi(fixture_computations())

    report = await clean_computations(api, timedelta(0), now=NOW)

    assert api.requests == [] and report.purges == () and report.updated_before is None


async def test_one_protocol_failing_does_not_spare_the_others() -> None:
    api = FakeInternalApi(fixture_computations(), failing={ProtocolType.LIQUID_LEGIONS_V2})

    with pytest.raises(CleanerError, match="LIQUID_LEGIONS_V2"):
        await clean_computations(api, timedelta(days=90), now=NOW)

    assert sorted(c.global_id for c in api.computations) == [
        "llv2-old",
        "llv2-old-running",
        "llv2-recent",
    ]


class RecordingComputations(computations_service_pb2_grpc.ComputationsServicer):
    def __init__(self) -> None:
        self.purges: list[computations_service_pb2.PurgeComputationsRequest] = []

    async def PurgeComputations(
        self, request: computations_service_pb2.PurgeComputationsRequest, context: Any
    ) -> computations_service_pb2.PurgeComputationsResponse:
        self.purges.append(request)
        if request.force:
            return computations_service_pb2.PurgeComputationsResponse(purge_count=2)
        return computations_service_pb2.PurgeComputationsResponse(
            purge_count=2, purge_sample=["a", "b"]
        )


@pytest.fixture
async def internal_api() -> AsyncIterator[tuple[RecordingComputations, grpc.aio.Channel]]:
    servicer = RecordingComputations()
    server = grpc.aio.server()
    computations_service_pb2_grpc.add_ComputationsServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield servicer, channel
    finally:
        await channel.close()
        await server.stop(None)


async def test_the_grpc_purger_sends_one_request_per_protocol(
    internal_api: tuple[RecordingComputations, grpc.aio.Channel],
) -> None:
    servicer, channel = internal_api

    report = await clean_computations(
        GrpcComputationPurger(channel), timedelta(days=180), dry_run=True, now=NOW
    )

    assert report.total == 8
    assert report.purges[0].sample == ("a", "b")
    assert [r.stages[0].WhichOneof("stage") for r in servicer.purges] == [
        "liquid_legions_v2",
        "reach_only_liquid_legions_v2",
        "honest_majority_share_shuffle",
        "trus_tee",
    ]
    first = servicer.purges[0]
    assert first.stages[0].liquid_legions_v2 == complete(ProtocolType.LIQUID_LEGIONS_V2)
    assert first.updated_before.ToDatetime(UTC) == NOW - timedelta(days=180)
    assert not first.force
