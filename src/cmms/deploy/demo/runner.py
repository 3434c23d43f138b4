"""Run the demo: start a local system, one measurement per protocol (one at a time), stop.

Each measurement is made exactly as `cmms mc measure` makes it (create, wait, verify the signed
result), for the consumer that routes it to its protocol. Its truth is counted in the clear from
the same synthetic population the EDP simulators generate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc

from cmms.api.public.v1 import measurements_pb2
from cmms.clients.mc.client import Backoff, MeasurementConsumerError
from cmms.clients.mc.measure import ExpectedProtocol, measure
from cmms.clients.mc.measurement import MeasurementKind, MeasurementParams
from cmms.clients.mc.results import ResultVerificationError
from cmms.deploy.demo.stages import (
    StageTime,
    computations_started_between,
    read_stage_events,
    stage_times,
)
from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.supervisor import ChildFailedError
from cmms.deploy.local.system import DATA_PROVIDERS, LocalSystem
from cmms.deploy.local.truth import true_reach_and_frequency

Measurement = measurements_pb2.Measurement

MAX_FREQUENCY = 10
# Far quicker than a real consumer polls: the demo wants to show each state as it happens.
POLL_BACKOFF = Backoff(initial_seconds=0.25, multiplier=1.2, maximum_seconds=2.0)
MEASUREMENT_TIMEOUT_SECONDS = 900.0
# How long a mill job may take to log the end of a stage after the result is out.
STAGE_LOG_WAIT_SECONDS = 10.0


@dataclass
class DemoMeasurement:
    """One protocol's measurement: what came out, what is true, and how long it took."""

    protocol: LocalProtocol
    kind: MeasurementKind
    reach_truth: int
    frequency_truth: dict[int, float] | None
    status: str = "pending"
    reach_estimate: int | None = None
    frequency_estimate: dict[int, float] | None = None
    duration_s: float = 0.0
    stages: list[StageTime] = field(default_factory=list)
    measurement: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def relative_error(self) -> float | None:
        if self.reach_estimate is None or self.reach_truth == 0:
            return None
        return abs(self.reach_estimate - self.reach_truth) / self.reach_truth

    def document(self) -> dict[str, Any]:
        """The entry of `cmms demo --json` for this measurement."""
        entry: dict[str, Any] = {
            "protocol": self.protocol.value,
            "type": self.kind.value,
            "status": self.status,
            "reach": {"estimate": self.reach_estimate, "truth": self.reach_truth},
            "frequency": None,
            "duration_s": round(self.duration_s, 3),
            "stages": [
                {"duchy": s.duchy, "stage": s.stage, "seconds": round(s.seconds, 3)}
                for s in self.stages
            ],
        }
        if self.frequency_truth is not None:
            entry["frequency"] = {
                "estimate": _shares(self.frequency_estimate),
                "truth": _shares(self.frequency_truth),
            }
        if self.measurement is not None:
            entry["measurement"] = self.measurement
        if self.error is not None:
            entry["error"] = self.error
        return entry


def _shares(distribution: dict[int, float] | None) -> dict[str, float] | None:
    if distribution is None:
        return None
    return {str(k): distribution[k] for k in sorted(distribution)}


class DemoObserver:
    """What the demo tells the user as it goes (the display implements it)."""

    def system_progress(self, message: str) -> None: ...

    def measurement_started(self, entry: DemoMeasurement) -> None: ...

    def measurement_state(self, entry: DemoMeasurement, state: str) -> None: ...

    def measurement_finished(self, entry: DemoMeasurement) -> None: ...


def planned_measurements(
    options: LocalOptions, protocols: Sequence[LocalProtocol]
) -> list[DemoMeasurement]:
    truth = true_reach_and_frequency(options, DATA_PROVIDERS, MAX_FREQUENCY)
    plan = []
    for protocol in protocols:
        kind = MeasurementKind(protocol.measurement_type)
        with_frequency = kind is MeasurementKind.REACH_AND_FREQUENCY
        plan.append(
            DemoMeasurement(
                protocol,
                kind,
                reach_truth=truth.reach,
                frequency_truth=dict(truth.relative_frequency) if with_frequency else None,
            )
        )
    return plan


async def run_demo(
    options: LocalOptions, protocols: Sequence[LocalProtocol], observer: DemoObserver
) -> list[DemoMeasurement]:
    """Start the system, measure with each protocol in turn, stop; never raises for a failed
    measurement (it is marked failed), only for a system that cannot start."""
    plan = planned_measurements(options, protocols)
    async with LocalSystem(options, report=observer.system_progress) as system:
        for entry in plan:
            observer.measurement_started(entry)
            failure = system.supervisor.failure()
            if failure is not None:
                _fail(entry, f"not run: {failure.name} is no longer running")
            else:
                await _measure(system, entry, observer)
            observer.measurement_finished(entry)
        observer.system_progress("stopping the system")
    return plan


def _fail(entry: DemoMeasurement, message: str) -> None:
    entry.status = "failed"
    entry.error = message


async def _measure(system: LocalSystem, entry: DemoMeasurement, observer: DemoObserver) -> None:
    params = MeasurementParams(kind=entry.kind, max_frequency=MAX_FREQUENCY)

    def on_update(measurement: Measurement) -> None:
        entry.measurement = measurement.name
        observer.measurement_state(entry, Measurement.State.Name(measurement.state))

    began_at = datetime.now(UTC)
    began = time.monotonic()
    try:
        outcome = await system.supervisor.unless_a_child_fails(
            measure(
                system.endpoints,
                params,
                protocol=ExpectedProtocol(entry.protocol.value),
                measurement_consumer=entry.protocol.measurement_consumer,
                backoff=POLL_BACKOFF,
                max_wait_seconds=MEASUREMENT_TIMEOUT_SECONDS,
                on_update=on_update,
            )
        )
    except ChildFailedError as failure:
        _fail(entry, str(failure).splitlines()[0])
        entry.duration_s = time.monotonic() - began
        return
    except (MeasurementConsumerError, ResultVerificationError) as error:
        _fail(entry, str(error))
    except grpc.aio.AioRpcError as error:
        _fail(entry, f"Kingdom call failed: {error.code().name}: {error.details()}")
    else:
        result = outcome.results[0].result
        entry.status = "succeeded"
        entry.reach_estimate = int(result.reach.value)
        if entry.frequency_truth is not None:
            distribution = result.frequency.relative_frequency_distribution
            entry.frequency_estimate = {
                f: float(distribution.get(f, 0.0)) for f in range(1, MAX_FREQUENCY + 1)
            }
    entry.duration_s = time.monotonic() - began
    entry.stages = await _stages(system, began_at, datetime.now(UTC))


async def _stages(system: LocalSystem, start: datetime, end: datetime) -> list[StageTime]:
    mill_logs = system.layout.logs / "mills"
    deadline = time.monotonic() + STAGE_LOG_WAIT_SECONDS
    while True:
        events = read_stage_events(mill_logs)
        computations = computations_started_between(events, start, end)
        times, complete = stage_times(events, computations)
        if complete or time.monotonic() > deadline:
            return times
        await asyncio.sleep(0.2)
