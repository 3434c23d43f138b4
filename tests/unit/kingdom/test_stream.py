"""StreamActiveComputations: states, order, token resume (across a Kingdom restart), wake-ups."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from cmms.api.public.v1 import measurements_pb2
from cmms.api.system.v1 import computation_pb2, computations_pb2
from cmms.common.grpc.status import StatusError
from cmms.common.identity import Principal, acting_as
from cmms.common.pki import PkiLayout
from cmms.kingdom.system.computations import ComputationsServicer, StreamSettings
from cmms.kingdom.system.stream_token import decode_token
from cmms.testing.kingdom import MC, Flow, KingdomWorld
from cmms.testing.manual_clock import ManualClock

EDPS = ("edp1", "edp2", "edp3")
Computation = computation_pb2.Computation
Response = computations_pb2.StreamActiveComputationsResponse


async def drain(world: KingdomWorld, duchy: str, token: str = "") -> list[Response]:
    """One stream call with a zero lifetime: everything currently after `token`, then the end."""
    with acting_as(Principal.duchy(duchy)):
        return [
            r
            async for r in world.servicers.computations.StreamActiveComputations(
                computations_pb2.StreamActiveComputationsRequest(continuation_token=token), None
            )
        ]


def seen(responses: list[Response]) -> list[tuple[str, int]]:
    return [(r.computation.name, r.computation.state) for r in responses]


def positions(responses: list[Response]) -> list[tuple[int, int]]:
    decoded = [decode_token(r.continuation_token) for r in responses]
    return [(p.update_time_us, p.computation_id) for p in decoded if p is not None]


async def test_states_order_and_resume(world: KingdomWorld) -> None:
    flow = Flow(world)
    first_request = world.measurement_request(EDPS)
    first = await flow.computation_of(await flow.create(first_request))
    second_measurement = await flow.create(world.measurement_request(EDPS))
    second = await flow.computation_of(second_measurement)

    initial = await drain(world, "worker1")
    assert seen(initial) == [
        (first.name, Computation.PENDING_REQUISITION_PARAMS),
        (second.name, Computation.PENDING_REQUISITION_PARAMS),
    ]
    assert positions(initial) == sorted(positions(initial))
    token = initial[-1].continuation_token
    assert await drain(world, "worker1", token) == []

    # PENDING_REQUISITION_FULFILLMENT is not streamed; confirmation and terminal states are.
    await flow.set_all_params(first)
    assert await drain(world, "worker1", token) == []
    await flow.fulfill_all(first_request, await flow.refresh(first))
    with acting_as(MC):
        await flow.servicers.measurements.CancelMeasurement(
            measurements_pb2.CancelMeasurementRequest(name=second_measurement.name), None
        )
    later = await drain(world, "worker1", token)
    assert seen(later) == [
        (first.name, Computation.PENDING_PARTICIPANT_CONFIRMATION),
        (second.name, Computation.CANCELLED),
    ]
    assert positions(later)[0] > positions(initial)[-1]
    # A fresh stream replays only current states, terminal ones included.
    assert seen(await drain(world, "worker1")) == seen(later)
    # A duchy outside the computations sees nothing.
    assert await drain(world, "worker3-not-configured") == []


async def test_resume_after_restart_misses_and_repeats_nothing(
    kingdom_database_url: str, dev_pki: PkiLayout
) -> None:
    before = await KingdomWorld.open(kingdom_database_url, dev_pki)
    flow = Flow(before)
    requests = [before.measurement_request(EDPS) for _ in range(3)]
    computations = [await flow.computation_of(await flow.create(r)) for r in requests]
    await flow.set_all_params(computations[0])
    streamed = await drain(before, "aggregator")
    token = streamed[-1].continuation_token
    restart_time = before.clock()
    await before.close()

    # The new process's clock is behind the old one: update times must still move forward.
    after = await KingdomWorld.open(
        kingdom_database_url, dev_pki, clock=ManualClock(restart_time - timedelta(minutes=5))
    )
    try:
        flow = Flow(after)
        await flow.fulfill_all(requests[0], await flow.refresh(computations[0]))
        await flow.set_all_params(computations[1])
        await flow.fulfill_all(requests[1], await flow.refresh(computations[1]))
        fourth = await flow.computation_of(await flow.create(after.measurement_request(EDPS)))
        resumed = await drain(after, "aggregator", token)
        assert seen(resumed) == [
            (computations[0].name, Computation.PENDING_PARTICIPANT_CONFIRMATION),
            (computations[1].name, Computation.PENDING_PARTICIPANT_CONFIRMATION),
            (fourth.name, Computation.PENDING_REQUISITION_PARAMS),
        ]
        assert positions(resumed)[0] > positions(streamed)[-1]
        assert positions(resumed) == sorted(set(positions(resumed)))
    finally:
        await after.close()


async def test_malformed_token_is_invalid_argument(world: KingdomWorld) -> None:
    with pytest.raises(StatusError) as raised:
        await drain(world, "worker1", "not base64 at all!")
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_long_lived_stream_wakes_on_commit(world: KingdomWorld) -> None:
    # A poll interval of an hour: only the change feed can deliver the new computation.
    servicer = ComputationsServicer(
        world.repositories, stream=StreamSettings(poll_interval=3600, max_lifetime=7200)
    )
    first_response: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

    async def listen() -> None:
        with acting_as(Principal.duchy("worker2")):
            stream = servicer.StreamActiveComputations(
                computations_pb2.StreamActiveComputationsRequest(), None
            )
            first_response.set_result(await anext(stream))
            await stream.aclose()

    listener = asyncio.create_task(listen())
    # Let the listener finish its first (empty) poll and block before the write happens.
    while world.repositories.changes.waiters == 0:
        assert not listener.done()
        await asyncio.sleep(0)
    created = await Flow(world).create(world.measurement_request(EDPS))
    response = await asyncio.wait_for(first_response, timeout=30)
    await listener
    assert response.computation.state == Computation.PENDING_REQUISITION_PARAMS
    assert response.computation.requisitions
    assert created.name
