"""Test kit for fault and load scenarios on a local system started in the test's own process.

What a scenario needs besides `LocalSystem` itself: measurements running in the background as
`cmms mc measure` makes them, each duchy's computations as its internal API reports them (stage,
attempt, lock owner), the mill jobs a duchy's scheduler is running and what their logs say, and
waiting on any of that with a bounded timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import grpc

from cmms.api.internal.duchy.v1 import (
    computation_token_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
)
from cmms.clients.mc.client import Backoff
from cmms.clients.mc.measure import ExpectedProtocol, MeasureOutcome, measure
from cmms.clients.mc.measurement import MeasurementKind, MeasurementParams
from cmms.clients.mc.results import VerifiedResult
from cmms.common.grpc import ChannelSettings, ClientTls, secure_channel
from cmms.common.identity import Principal
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import DATA_PROVIDERS, LocalSystem
from cmms.deploy.local.truth import true_reach_and_frequency
from cmms.duchy.stage_messages import computation_stage
from cmms.protocols.stages import ProtocolType, stage_graph

Token = computation_token_pb2.ComputationToken
Value = TypeVar("Value")

MAX_FREQUENCY = 10
POLL_BACKOFF = Backoff(initial_seconds=0.25, multiplier=1.2, maximum_seconds=2.0)
PROTOCOL_TYPES = {
    LocalProtocol.LLV2: ProtocolType.LIQUID_LEGIONS_V2,
    LocalProtocol.RO_LLV2: ProtocolType.REACH_ONLY_LIQUID_LEGIONS_V2,
    LocalProtocol.HMSS: ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE,
    LocalProtocol.TRUSTEE: ProtocolType.TRUS_TEE,
}
# Liquid Legions estimates from a sketch and always adds its protocol's noise.
LIQUID_LEGIONS_REACH_TOLERANCE = 0.1
LIQUID_LEGIONS_SHARE_TOLERANCE = 0.05


async def eventually(
    probe: Callable[[], Awaitable[Value | None]],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> Value:
    """Poll `probe` until it returns something other than None; `TimeoutError` naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(interval)


def start_measurement(
    system: LocalSystem, protocol: LocalProtocol, *, max_wait_seconds: float = 900.0
) -> asyncio.Task[MeasureOutcome]:
    """A measurement with `protocol`, made as `cmms mc measure` makes it, running in a task."""
    kind = MeasurementKind(protocol.measurement_type)
    return asyncio.ensure_future(
        measure(
            system.endpoints,
            MeasurementParams(kind=kind, max_frequency=MAX_FREQUENCY),
            protocol=ExpectedProtocol(protocol.value),
            measurement_consumer=protocol.measurement_consumer,
            backoff=POLL_BACKOFF,
            max_wait_seconds=max_wait_seconds,
        )
    )


@dataclass(frozen=True)
class Check:
    """A result against the clear-text truth: what was expected, what came, and whether it fits."""

    ok: bool
    reach: int
    true_reach: int
    detail: str
    # The largest difference of a frequency share from the truth (0 for a reach measurement).
    largest_share_error: float = 0.0


def check_result(
    system: LocalSystem,
    protocol: LocalProtocol,
    result: VerifiedResult,
    *,
    liquid_legions_share_tolerance: float = LIQUID_LEGIONS_SHARE_TOLERANCE,
) -> Check:
    """HMSS and TrusTee without noise must equal the truth; Liquid Legions within tolerance
    (10 % of the reach; each frequency share within `liquid_legions_share_tolerance`)."""
    truth = true_reach_and_frequency(system.options, DATA_PROVIDERS, MAX_FREQUENCY)
    got = result.result
    reach = int(got.reach.value)
    exact = protocol in (LocalProtocol.HMSS, LocalProtocol.TRUSTEE) and not system.options.noise
    problems = []
    if exact and reach != truth.reach:
        problems.append(f"reach {reach} != {truth.reach}")
    if not exact and abs(reach - truth.reach) > LIQUID_LEGIONS_REACH_TOLERANCE * truth.reach:
        problems.append(f"reach {reach} too far from {truth.reach}")
    largest = 0.0
    if protocol.measurement_type == MeasurementKind.REACH_AND_FREQUENCY.value:
        shares = got.frequency.relative_frequency_distribution
        tolerance = 1e-9 if exact else liquid_legions_share_tolerance
        for frequency, share in truth.relative_frequency.items():
            error = abs(float(shares.get(frequency, 0.0)) - share)
            largest = max(largest, error)
            if error > tolerance:
                problems.append(f"frequency {frequency}: {shares.get(frequency, 0.0)} vs {share}")
    return Check(not problems, reach, truth.reach, "; ".join(problems) or "ok", largest)


class DuchyComputations:
    """One duchy's computations, read from its internal API with the duchy's own certificate."""

    def __init__(self, system: LocalSystem, duchy_id: str, deadline_seconds: float = 10.0) -> None:
        endpoints = system.endpoints
        target = endpoints.duchies[duchy_id].internal_api
        if target is None:
            raise ValueError(f"the endpoints name no internal API of {duchy_id}")
        self.duchy_id = duchy_id
        self._channel = secure_channel(
            target,
            ClientTls.from_pki(endpoints.pki, Principal.duchy(duchy_id)),
            ChannelSettings(target_name_override=endpoints.tls_server_name),
        )
        self._stub = computations_service_pb2_grpc.ComputationsStub(self._channel)
        self._deadline = deadline_seconds

    async def global_ids(self, protocol: ProtocolType) -> list[str]:
        """Every computation of `protocol` the duchy holds, in any stage."""
        stages = [computation_stage(protocol, int(s)) for s in stage_graph(protocol).stages]
        reply = await self._stub.GetComputationIds(
            computations_service_pb2.GetComputationIdsRequest(stages=stages),
            timeout=self._deadline,
        )
        return list(reply.global_ids)

    async def token(self, global_id: str) -> Token | None:
        """The computation's token; None while the duchy does not know it."""
        try:
            reply = await self._stub.GetComputationToken(
                computations_service_pb2.GetComputationTokenRequest(
                    global_computation_id=global_id
                ),
                timeout=self._deadline,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        token: Token = reply.token
        return token

    async def close(self) -> None:
        await self._channel.close()


def lock_held(token: Token) -> bool:
    """Whether someone holds an unexpired lock on the computation."""
    if not token.lock_owner or not token.HasField("lock_expiration_time"):
        return False
    return token.lock_expiration_time.ToDatetime(tzinfo=UTC) > datetime.now(UTC)


# ------------------------------------------------------------------------------- mill jobs


def mill_jobs(system: LocalSystem, duchy_id: str) -> dict[str, int]:
    """The running mill jobs of the duchy's scheduler: job name (its lock owner) -> pid.

    A job writes to `{mill logs}/{job}.log`, whether the scheduler started it (a child) or its
    warm standby forked it (a grandchild): its standard output names the job. The job's own
    kernel workers write there too, one level further down, so the shallowest process wins.
    """
    logs = system.layout.mill_logs(duchy_id).resolve()
    scheduler = f"{duchy_id}-mill-scheduler"
    children = set(system.supervisor.descendants(scheduler, depth=1))
    grandchildren = set(system.supervisor.descendants(scheduler, depth=2)) - children
    jobs: dict[str, int] = {}
    for level in (children, grandchildren):
        for pid in sorted(level):
            try:
                output = Path(os.readlink(f"/proc/{pid}/fd/1"))
            except OSError:
                continue
            if output.parent == logs and output.suffix == ".log":
                jobs.setdefault(output.stem, pid)
    return jobs


@dataclass(frozen=True)
class LogEvent:
    event: str
    fields: dict[str, object]
    # The duchy whose mill job logged it, when read from the mill logs.
    duchy: str | None = None


def mill_job_log(system: LocalSystem, duchy_id: str, job: str) -> Path:
    return system.layout.mill_logs(duchy_id) / f"{job}.log"


def log_events(path: Path, duchy: str | None = None) -> list[LogEvent]:
    """The JSON lines of a log (torn or other lines skipped)."""
    events = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("event"), str):
            events.append(LogEvent(record["event"], record, duchy))
    return events


def mill_log_events(system: LocalSystem, duchy_id: str | None = None) -> list[LogEvent]:
    """Every JSON line of every mill job's log (of one duchy, or of all)."""
    root = system.layout.logs / "mills"
    directories = [root / duchy_id] if duchy_id else sorted(p for p in root.glob("*") if p.is_dir())
    events = []
    for directory in directories:
        for log in sorted(directory.glob("*.log")):
            events += log_events(log, directory.name)
    return events


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
