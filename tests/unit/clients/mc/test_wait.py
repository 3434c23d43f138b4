"""Waiting for a measurement: polling through a Kingdom that cannot answer for a while."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from cmms.api.public.v1 import measurements_pb2
from cmms.clients.mc.client import (
    Backoff,
    ConsumerStubs,
    MeasurementConsumerClient,
    MeasurementConsumerError,
)

Measurement = measurements_pb2.Measurement
NAME = "measurementConsumers/mc1/measurements/m1"


def refusal(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="away")


class ScriptedMeasurements:
    """GetMeasurement answers from a script: a state, or a status code to fail with."""

    def __init__(self, script: Sequence[int | grpc.StatusCode]) -> None:
        self.script = list(script)
        self.reads = 0

    async def GetMeasurement(self, request: Any) -> Measurement:
        step = self.script[min(self.reads, len(self.script) - 1)]
        self.reads += 1
        if isinstance(step, grpc.StatusCode):
            raise refusal(step)
        return Measurement(name=request.name, state=step)


def client(measurements: ScriptedMeasurements) -> MeasurementConsumerClient:
    stubs = ConsumerStubs(measurements, None, None, None)  # type: ignore[arg-type]
    return MeasurementConsumerClient(None, stubs, None, None)  # type: ignore[arg-type]


async def no_sleep(_: float) -> None:
    pass


async def test_a_kingdom_away_for_a_while_is_polled_again() -> None:
    unavailable, slow = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED
    measurements = ScriptedMeasurements(
        [Measurement.COMPUTING, unavailable, unavailable, slow, Measurement.SUCCEEDED]
    )
    seen: list[int] = []
    done = await client(measurements).wait(
        NAME, sleep=no_sleep, on_update=lambda m: seen.append(m.state), max_unanswered=3
    )
    assert done.state == Measurement.SUCCEEDED
    assert seen == [Measurement.COMPUTING, Measurement.SUCCEEDED]
    assert measurements.reads == 5


async def test_unanswered_reads_in_a_row_are_bounded() -> None:
    unavailable = grpc.StatusCode.UNAVAILABLE
    measurements = ScriptedMeasurements([Measurement.COMPUTING, unavailable])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await client(measurements).wait(NAME, sleep=no_sleep, max_unanswered=3)
    assert caught.value.code() == unavailable
    assert measurements.reads == 1 + 4


async def test_other_errors_are_not_retried() -> None:
    measurements = ScriptedMeasurements([grpc.StatusCode.PERMISSION_DENIED])
    with pytest.raises(grpc.aio.AioRpcError):
        await client(measurements).wait(NAME, sleep=no_sleep)
    assert measurements.reads == 1


async def test_the_time_limit_counts_unanswered_reads_too() -> None:
    measurements = ScriptedMeasurements([grpc.StatusCode.UNAVAILABLE])
    with pytest.raises(MeasurementConsumerError, match="still unread after"):
        await client(measurements).wait(
            NAME,
            sleep=no_sleep,
            backoff=Backoff(initial_seconds=1, multiplier=1, maximum_seconds=1),
            max_wait_seconds=5,
            max_unanswered=100,
        )
    assert measurements.reads == 6
