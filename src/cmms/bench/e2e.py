"""`cmms bench e2e --protocol llv2 --registers N`: one measurement through a whole local system,
against the crypto-only time of `cmms bench protocol llv2` at the same N, in the same run.

**What N means.** N is the size of the combined register vector (CRV): the registers of the three
EDPs' LLv2 sketches together, before the duchies add noise registers. The EDP simulators draw their
events from a synthetic population (`cmms.clients.edp.population`); this harness picks the
population size so that the three sketches, built exactly as the simulators build them (same
population, VID sampling and sketch parameters from the Kingdom config: decay rate 5.6,
1,000,000 registers), hold about N registers together. Each EDP reaches 2% of the population,
and the audiences are drawn independently (overlap 0), so that few registers collide across EDPs
and the CRV has nearly as many distinct register indexes as registers, like the crypto-only
benchmark's synthetic input (whose N indexes are all distinct). The report gives both counts.

**What is timed.**

- End to end: from just before the consumer creates the measurement until it holds the verified
  result (it polls the Kingdom every 0.1 s). This includes the heralds, the mill scheduler
  launching a `cmms duchy mill` process per stage, every gRPC transfer and blob, the databases,
  and the EDP simulators noticing, building and encrypting their sketches.
- Crypto only: `cmms bench protocol llv2` (`cmms.bench.llv2.run_llv2_bench`) with the same N, the
  same parallelism as the mill jobs and the protocol parameters (sketch and noise) read from the
  computation the local system ran. Its total is the critical path of its stages' compute time.
- Per stage: the mill jobs' own figures of every stage attempt (ComputationStats rows: stage wall
  time, crypto wall and CPU time, RPC time and bytes), read from the duchies' databases, and the
  start and end times from the mill jobs' logs; and the crypto-only stage times beside them.

The ratio is end-to-end seconds over crypto-only seconds; the target is at most
`TARGET_RATIO`. Gaps (time on the critical path outside any stage) are what orchestration adds
between stages: polling, mill job start-up and claiming.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cmms.bench.llv2 import LlBenchConfig, LlBenchReport, run_llv2_bench
from cmms.clients.edp.population import Audience, impression_vids
from cmms.clients.mc.client import Backoff
from cmms.clients.mc.measure import ExpectedProtocol, measure
from cmms.clients.mc.measurement import MeasurementKind, MeasurementParams
from cmms.deploy.demo.stages import (
    StageEvent,
    computations_started_between,
    read_stage_events,
)
from cmms.deploy.local.configs import AGGREGATOR, kingdom_config
from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.supervisor import ChildFailedError
from cmms.deploy.local.system import DATA_PROVIDERS, LocalSystem
from cmms.deploy.local.truth import population_of, true_reach_and_frequency
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters
from cmms.sketch import LiquidLegionsParams, LiquidLegionsSketch

TARGET_RATIO = 1.15
PROTOCOLS = ("llv2",)
REACH_FRACTION = 0.02
OVERLAP = 0.0
# The consumer's polls: frequent, so that the result is seen soon after the aggregator has it.
POLL_BACKOFF = Backoff(initial_seconds=0.1, multiplier=1.0, maximum_seconds=0.1)
MEASUREMENT_TIMEOUT_SECONDS = 6 * 3600.0
STAGE_LOG_WAIT_SECONDS = 10.0
# How close to N the planned CRV must come (relative).
PLAN_TOLERANCE = 0.005
PLAN_ROUNDS = 8

# ComputationStats metric names the mill records per stage attempt (`cmms.duchy.mill.stats`).
_STAGE_MS = "stage_wall_clock_duration_ms"
_CRYPTO_MS = "crypto_wall_clock_duration_ms"
_CRYPTO_CPU_MS = "crypto_cpu_duration_ms"
_RPC_MS = "data_transmission_rpc_wall_clock_duration_ms"
_RPC_BYTES = "bytes_of_data_in_rpc"

# Mill stage name -> the crypto-only benchmark's stage prefix.
_BENCH_PREFIX = {
    "SETUP_PHASE": "setup",
    "EXECUTION_PHASE_ONE": "p1",
    "EXECUTION_PHASE_TWO": "p2",
    "EXECUTION_PHASE_THREE": "p3",
}


@dataclass(frozen=True)
class E2eBenchConfig:
    """One run: about N CRV registers, LLv2 R&F with maximum frequency MF."""

    registers: int
    protocol: str = "llv2"
    parallelism: int = 0  # worker processes of every mill job and crypto stage; 0: one per CPU
    max_frequency: int = 10
    population_seed: int = 1
    workdir: Path | None = None  # default: a temporary directory, removed afterwards
    crypto: bool = True  # False: the end-to-end run alone (no ratio)
    repeats: int = 1  # measurements (one system) and crypto-only runs; the fastest of each counts
    warm_standby: bool = True  # False: every mill job starts a fresh interpreter

    @property
    def resolved_parallelism(self) -> int:
        return self.parallelism or os.cpu_count() or 1


@dataclass(frozen=True)
class Workload:
    """The population that gives about N CRV registers, and what its sketches hold."""

    population_size: int
    registers: int
    registers_per_edp: dict[str, int]
    distinct_indexes: int
    reach: int


@dataclass(frozen=True)
class E2eStage:
    """One stage attempt of the computation at one duchy, as the mill job saw it."""

    duchy: str
    stage: str
    attempt: int
    started_s: float  # after the measurement was created
    seconds: float  # from the mill log (stage started .. stage done)
    mill_stage_seconds: float | None  # the mill's stage wall time (ComputationStats)
    crypto_seconds: float | None
    crypto_cpu_seconds: float | None
    rpc_seconds: float | None
    rpc_bytes: int | None
    on_critical_path: bool = False
    bench_stage: str | None = None  # the crypto-only stage it corresponds to
    bench_seconds: float | None = None


@dataclass(frozen=True)
class E2eRun:
    """The end-to-end measurement: its times, stages, parameters and estimate."""

    seconds: float
    computing_at_s: float | None  # when the consumer first saw the measurement COMPUTING
    fulfilled_at_s: float | None  # when the last EDP had fulfilled its requisition (its log)
    stages: list[E2eStage]
    parameters: ReachAndFrequencyParameters | None
    reach: int
    frequency: dict[int, float]
    computation: str
    load_average: float | None = None  # the host's 1-minute load, mean of start and end


@dataclass
class E2eBenchReport:
    """The fastest end-to-end run (`run`) and crypto-only run (`crypto`) of each side's
    repeats; every repeat's total is kept too."""

    config: E2eBenchConfig
    workload: Workload
    run: E2eRun
    crypto: LlBenchReport | None
    notes: list[str] = field(default_factory=list)
    runs: list[E2eRun] = field(default_factory=list)
    crypto_runs: list[tuple[float, float]] = field(default_factory=list)  # (seconds, load)

    @property
    def crypto_seconds(self) -> float | None:
        return self.crypto.total_seconds if self.crypto is not None else None

    @property
    def ratio(self) -> float | None:
        crypto = self.crypto_seconds
        return self.run.seconds / crypto if crypto else None

    def breakdown(self) -> dict[str, float]:
        """Where the end-to-end time went, along the critical path.

        `before_first_stage_s + stages_s + edp_fulfilment_s + gaps_between_stages_s +
        after_last_stage_s` is the whole. `edp_fulfilment_s` is the part of the gap before the
        confirmation phase up to the last EDP's fulfilment (the EDPs noticing the requisition,
        building and encrypting their sketches, uploading them); the rest of every gap is
        orchestration: the herald, the scheduler's polling and claim, the mill job starting.
        """
        path = sorted((s for s in self.run.stages if s.on_critical_path), key=_start)
        if not path:
            return {}
        in_stages = sum(s.seconds for s in path)
        crypto = sum(s.crypto_seconds or 0.0 for s in path)
        rpc = sum(s.rpc_seconds or 0.0 for s in path)
        fulfilled = self.run.fulfilled_at_s
        edps = gaps = 0.0
        for before, after in itertools.pairwise(path):
            gap_start, gap_end = _end(before), after.started_s
            if fulfilled is not None and gap_start <= fulfilled <= gap_end:
                edps += fulfilled - gap_start
                gaps += gap_end - fulfilled
            else:
                gaps += gap_end - gap_start
        return {
            "before_first_stage_s": path[0].started_s,
            "stages_s": in_stages,
            "stage_crypto_s": crypto,
            "stage_rpc_s": rpc,
            "stage_other_s": in_stages - crypto - rpc,
            "edp_fulfilment_s": edps,
            "gaps_between_stages_s": gaps,
            "after_last_stage_s": self.run.seconds - _end(path[-1]),
        }

    @property
    def ratio_without_edps(self) -> float | None:
        """Like `ratio`, without the EDPs' fulfilment (their sketches and encryption, which the
        crypto-only benchmark leaves out)."""
        crypto = self.crypto_seconds
        edps = self.breakdown().get("edp_fulfilment_s", 0.0)
        return (self.run.seconds - edps) / crypto if crypto else None

    @property
    def ratio_to_own_crypto(self) -> float | None:
        """End-to-end seconds over the crypto seconds of the same run's critical path: what
        everything else adds, measured under the same load."""
        crypto = self.breakdown().get("stage_crypto_s")
        return self.run.seconds / crypto if crypto else None

    def to_json(self) -> dict[str, object]:
        ratio = self.ratio
        return {
            "benchmark": "e2e",
            "protocol": self.config.protocol,
            "config": {
                "registers": self.config.registers,
                "parallelism": self.config.resolved_parallelism,
                "max_frequency": self.config.max_frequency,
                "population_seed": self.config.population_seed,
                "reach_fraction": REACH_FRACTION,
                "overlap": OVERLAP,
                "warm_standby": self.config.warm_standby,
                "repeats": self.config.repeats,
            },
            "workload": asdict(self.workload),
            "e2e": {
                "seconds": self.run.seconds,
                "computing_at_s": self.run.computing_at_s,
                "fulfilled_at_s": self.run.fulfilled_at_s,
                "load_average": self.run.load_average,
                "runs": [
                    {
                        "seconds": r.seconds,
                        "computation": r.computation,
                        "load_average": r.load_average,
                    }
                    for r in (self.runs or [self.run])
                ],
                "computation": self.run.computation,
                "breakdown": self.breakdown(),
                "stages": [asdict(s) for s in self.run.stages],
                "result": {
                    "reach": self.run.reach,
                    "reach_truth": self.workload.reach,
                    "frequency": {str(k): v for k, v in sorted(self.run.frequency.items())},
                },
            },
            "crypto_only": None
            if self.crypto is None
            else {
                "seconds": self.crypto.total_seconds,
                "stages": {
                    s.name: {
                        "seconds": s.seconds,
                        "on_critical_path": s.on_critical_path,
                        "input_bytes": s.input_bytes,
                        "output_bytes": s.output_bytes,
                    }
                    for s in self.crypto.stages
                },
                "result": self.crypto.result,
                "runs": [
                    {"seconds": seconds, "load_average": load} for seconds, load in self.crypto_runs
                ],
            },
            "ratio": ratio,
            "ratio_without_edps": self.ratio_without_edps,
            "ratio_to_own_crypto": self.ratio_to_own_crypto,
            "target_ratio": TARGET_RATIO,
            "target_met": None if ratio is None else ratio <= TARGET_RATIO,
            "notes": self.notes,
        }


# ---------------------------------------------------------------------------------------------
# Planning: the population that gives about N registers


def _sketch_params() -> LiquidLegionsParams:
    sketch = kingdom_config(noise=True).llv2.sketch
    return LiquidLegionsParams(
        sketch.decay_rate, sketch.max_size, sketch.sampling_indicator_size or sketch.max_size
    )


def _options(workdir: Path, population_size: int, config: E2eBenchConfig) -> LocalOptions:
    return LocalOptions(
        workdir=workdir,
        population_size=population_size,
        population_seed=config.population_seed,
        overlap=OVERLAP,
        reach_fraction=REACH_FRACTION,
        mill_parallelism=config.resolved_parallelism,
        mill_warm_standby=config.warm_standby,
    )


def _sketches(options: LocalOptions) -> dict[str, np.ndarray]:
    """Each EDP's register indexes, as its simulator's sketch holds them (sampling width 1)."""
    population, params = population_of(options), _sketch_params()
    indexes = {}
    for edp in DATA_PROVIDERS:
        events = impression_vids(population, Audience(edp, options.reach_fraction))
        indexes[edp] = LiquidLegionsSketch.from_vids(events, params).indexes
    return indexes


def workload_of(options: LocalOptions) -> Workload:
    sketches = _sketches(options)
    per_edp = {edp: len(ix) for edp, ix in sketches.items()}
    union = np.unique(np.concatenate(list(sketches.values())))
    truth = true_reach_and_frequency(options, DATA_PROVIDERS, 1)
    return Workload(
        options.population_size, sum(per_edp.values()), per_edp, int(union.size), truth.reach
    )


def plan_workload(config: E2eBenchConfig) -> Workload:
    """The population size whose EDP sketches hold about `config.registers` registers together."""
    target = config.registers
    # Each EDP reaches REACH_FRACTION of the population; a sketch holds at most one register per
    # reached VID, so start there and scale by what the sketches really hold.
    size = max(1, math.ceil(target / (len(DATA_PROVIDERS) * REACH_FRACTION)))
    best: Workload | None = None
    for _ in range(PLAN_ROUNDS):
        workload = workload_of(_options(Path("."), size, config))
        if best is None or abs(workload.registers - target) < abs(best.registers - target):
            best = workload
        if abs(workload.registers - target) <= PLAN_TOLERANCE * target or workload.registers == 0:
            break
        size = max(1, round(size * target / workload.registers))
        if size == workload.population_size:
            break
    assert best is not None
    return best


# ---------------------------------------------------------------------------------------------
# The end-to-end run


class E2eError(Exception):
    """The measurement did not succeed (the message says why)."""


@dataclass
class _Measured:
    """One measurement, before the databases are read."""

    seconds: float
    computing_at_s: float | None
    fulfilled_at_s: float | None
    began_at: datetime
    events: list[StageEvent]
    computation: str
    reach: int
    frequency: dict[int, float]
    load_average: float


async def run_end_to_end(
    config: E2eBenchConfig, workload: Workload, workdir: Path, report: Any = None
) -> list[E2eRun]:
    """Start a local system, make `config.repeats` LLv2 R&F measurements one after the other,
    stop it, read the figures."""
    options = _options(workdir, workload.population_size, config)
    say = report or (lambda _message: None)
    measured: list[_Measured] = []
    async with LocalSystem(options, report=say) as system:
        for number in range(1, config.repeats + 1):
            say(f"measuring ({number} of {config.repeats})")
            measured.append(await _measure_once(system, config))
    # The processes are gone: their databases can be read without competing with them.
    topology = system.topology
    urls = {d: topology.database_urls[d] for d in topology.duchies}
    runs = []
    for one in measured:
        figures, parameters = await _stats_of(one.computation, urls)
        runs.append(
            E2eRun(
                one.seconds,
                one.computing_at_s,
                one.fulfilled_at_s,
                _stages(one.events, one.computation, one.began_at, figures),
                parameters,
                one.reach,
                one.frequency,
                one.computation,
                one.load_average,
            )
        )
    return runs


async def _measure_once(system: LocalSystem, config: E2eBenchConfig) -> _Measured:
    params = MeasurementParams(
        kind=MeasurementKind.REACH_AND_FREQUENCY, max_frequency=config.max_frequency
    )
    states: dict[str, float] = {}
    load_before = os.getloadavg()[0]
    began_at = datetime.now(UTC)
    began = time.monotonic()

    def on_update(measurement: Any) -> None:
        name = type(measurement).State.Name(measurement.state)
        states.setdefault(name, time.monotonic() - began)

    try:
        outcome = await system.supervisor.unless_a_child_fails(
            measure(
                system.endpoints,
                params,
                protocol=ExpectedProtocol.LLV2,
                measurement_consumer=LocalProtocol.LLV2.measurement_consumer,
                backoff=POLL_BACKOFF,
                max_wait_seconds=MEASUREMENT_TIMEOUT_SECONDS,
                on_update=on_update,
            )
        )
    except ChildFailedError as failure:
        raise E2eError(str(failure).splitlines()[0]) from failure
    except Exception as error:
        raise E2eError(f"the measurement failed: {error}") from error
    seconds = time.monotonic() - began
    result = outcome.results[0].result
    distribution = result.frequency.relative_frequency_distribution
    events, computation = await _events_of_run(system, began_at)
    fulfilled = _last_fulfilment(system.layout.logs, began_at)
    return _Measured(
        seconds=seconds,
        computing_at_s=states.get("COMPUTING"),
        fulfilled_at_s=None if fulfilled is None else (fulfilled - began_at).total_seconds(),
        began_at=began_at,
        events=events,
        computation=computation,
        reach=int(result.reach.value),
        frequency={f: float(distribution.get(f, 0.0)) for f in range(1, config.max_frequency + 1)},
        load_average=(load_before + os.getloadavg()[0]) / 2,
    )


async def _events_of_run(system: LocalSystem, began_at: datetime) -> tuple[list[StageEvent], str]:
    """The stage events of the one computation that ran, once its mill jobs have logged them."""
    mill_logs = system.layout.logs / "mills"
    deadline = time.monotonic() + STAGE_LOG_WAIT_SECONDS
    while True:
        events = read_stage_events(mill_logs)
        computations = computations_started_between(events, began_at, datetime.now(UTC))
        if len(computations) > 1:
            raise E2eError(f"expected one computation, found {sorted(computations)}")
        mine = [e for e in events if e.computation in computations]
        started = {(e.duchy, e.stage, e.attempt) for e in mine if e.event == "stage started"}
        done = {(e.duchy, e.stage, e.attempt) for e in mine if e.event == "stage done"}
        if computations and (started <= done or time.monotonic() > deadline):
            return mine, next(iter(computations))
        if time.monotonic() > deadline:
            raise E2eError("no mill job logged a stage of the computation")
        # The last mill job may still be writing its final line; nothing to wait on but the file.
        await asyncio.sleep(0.2)


def _last_fulfilment(logs: Path, began_at: datetime) -> datetime | None:
    """When the last EDP simulator logged a fulfilment since `began_at` (None: none did)."""
    last = None
    for edp in DATA_PROVIDERS:
        try:
            lines = (logs / f"{edp}.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in lines.splitlines():
            if not line.startswith("{") or '"fulfilled"' not in line:
                continue
            try:
                record = json.loads(line)
                at = datetime.fromisoformat(record["timestamp"])
            except (ValueError, KeyError, TypeError):
                continue
            if record.get("event") == "fulfilled" and at >= began_at:
                last = at if last is None else max(last, at)
    return last


def _start(stage: E2eStage) -> float:
    return stage.started_s


def _end(stage: E2eStage) -> float:
    return stage.started_s + stage.seconds


_Figures = dict[tuple[str, str, int], dict[str, int]]


async def _stats_of(
    computation: str, database_urls: dict[str, str]
) -> tuple[_Figures, ReachAndFrequencyParameters | None]:
    """Every duchy's ComputationStats of the computation, and its LLv2 parameters."""
    from cmms.duchy.db import open_duchy_database
    from cmms.protocols.llv2.stages import Stage

    figures: _Figures = {}
    parameters = None
    for duchy, url in database_urls.items():
        database = open_duchy_database(url)
        try:
            token = await database.computations.get_token(computation)
            stats = await database.stats.stats(token.local_computation_id)
        finally:
            await database.close()
        for (stage, attempt, name), value in stats.items():
            figures.setdefault((duchy, Stage(stage).name, attempt), {})[name] = value
        if duchy == AGGREGATOR:
            parameters = llv2_parameters(token.computation_details, len(token.requisitions))
    return figures, parameters


def llv2_parameters(details: bytes, requisitions: int) -> ReachAndFrequencyParameters:
    """The parameters the mill runs an LLv2 computation with, from its stored details."""
    from cmms.api.internal.duchy.v1 import computation_details_pb2
    from cmms.duchy.mill.liquid_legions import noise_config

    parsed = computation_details_pb2.ComputationDetails.FromString(details)
    stored = parsed.liquid_legions_v2.parameters
    max_frequency = max(1, stored.maximum_frequency)
    return ReachAndFrequencyParameters(
        decay_rate=stored.sketch_parameters.decay_rate,
        max_size=stored.sketch_parameters.size,
        duchies=len(parsed.liquid_legions_v2.participants),
        requisitions=stored.requisition_count or requisitions,
        noise=noise_config(stored.noise, with_frequency=max_frequency > 1),
        max_frequency=max_frequency,
    )


def _stages(
    events: Sequence[StageEvent], computation: str, began_at: datetime, figures: _Figures
) -> list[E2eStage]:
    started: dict[tuple[str, str, int], datetime] = {}
    done: dict[tuple[str, str, int], datetime] = {}
    for event in events:
        key = (event.duchy, event.stage, event.attempt)
        (started if event.event == "stage started" else done)[key] = event.at
    stages = []
    for key, at in started.items():
        if key not in done:
            continue
        stats = figures.get(key, {})

        def seconds(name: str, stats: dict[str, int] = stats) -> float | None:
            return stats[name] / 1000 if name in stats else None

        stages.append(
            E2eStage(
                duchy=key[0],
                stage=key[1],
                attempt=key[2],
                started_s=(at - began_at).total_seconds(),
                seconds=(done[key] - at).total_seconds(),
                mill_stage_seconds=seconds(_STAGE_MS),
                crypto_seconds=seconds(_CRYPTO_MS),
                crypto_cpu_seconds=seconds(_CRYPTO_CPU_MS),
                rpc_seconds=seconds(_RPC_MS),
                rpc_bytes=stats.get(_RPC_BYTES),
            )
        )
    stages.sort(key=lambda s: (s.started_s, s.duchy))
    return _mark_critical_path(stages)


def _mark_critical_path(stages: list[E2eStage]) -> list[E2eStage]:
    """Walk back from the stage that ended last: each step, the stage that ended last before
    the current one started (parallel branches count once, by the one that held things up)."""
    if not stages:
        return stages
    end = {id(s): s.started_s + s.seconds for s in stages}
    current = max(stages, key=lambda s: end[id(s)])
    on_path = {id(current)}
    while True:
        before = [s for s in stages if end[id(s)] <= current.started_s + 1e-6]
        if not before:
            break
        current = max(before, key=lambda s: end[id(s)])
        on_path.add(id(current))
    return [E2eStage(**{**asdict(s), "on_critical_path": id(s) in on_path}) for s in stages]


def _match_bench_stages(stages: list[E2eStage], crypto: LlBenchReport) -> list[E2eStage]:
    """Pair each computing stage with the crypto-only one in the same ring position: per stage
    name, the workers in the order they started (w0, w1), the aggregator as `-a`."""
    bench = {s.name: s.seconds for s in crypto.stages}
    workers_seen: dict[str, int] = {}
    matched = []
    for stage in stages:
        prefix = _BENCH_PREFIX.get(stage.stage)
        name = None
        if prefix is not None:
            if stage.duchy == AGGREGATOR:
                name = f"{prefix}-a"
            else:
                position = workers_seen.get(stage.stage, 0)
                workers_seen[stage.stage] = position + 1
                name = f"{prefix}-w{position}"
        if name is not None and name in bench:
            matched.append(
                E2eStage(**{**asdict(stage), "bench_stage": name, "bench_seconds": bench[name]})
            )
        else:
            matched.append(stage)
    return matched


# ---------------------------------------------------------------------------------------------
# The whole benchmark


def run_e2e_benchmark(config: E2eBenchConfig, report: Any = None) -> E2eBenchReport:
    """Plan, run the local system, then the crypto-only benchmark at the same N and settings."""
    if config.protocol not in PROTOCOLS:
        raise ValueError(
            f"unknown protocol {config.protocol!r}; choose from {', '.join(PROTOCOLS)}"
        )
    if config.registers < 1 or config.max_frequency < 2 or config.repeats < 1:
        raise ValueError("need registers >= 1, max frequency >= 2 and repeats >= 1")
    say = report or (lambda _message: None)
    say(f"planning a population whose sketches hold about {config.registers:,} registers")
    workload = plan_workload(config)
    say(
        f"population {workload.population_size:,}: {workload.registers:,} registers "
        f"({workload.distinct_indexes:,} distinct indexes)"
    )
    scratch = None
    workdir = config.workdir
    if workdir is None:
        scratch = tempfile.mkdtemp(prefix="cmms-bench-e2e-")
        workdir = Path(scratch)
    try:
        runs = asyncio.run(run_end_to_end(config, workload, workdir.resolve(), say))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    run = min(runs, key=lambda r: r.seconds)
    notes = []
    crypto = None
    crypto_runs: list[tuple[float, float]] = []
    if config.crypto:
        for number in range(1, config.repeats + 1):
            say(
                f"crypto only ({number} of {config.repeats}): cmms bench protocol llv2 "
                f"--registers {workload.registers}"
            )
            load_before = os.getloadavg()[0]
            candidate = run_llv2_bench(
                LlBenchConfig(
                    registers=workload.registers,
                    parallelism=config.resolved_parallelism,
                    max_frequency=config.max_frequency,
                    edps=len(DATA_PROVIDERS),
                ),
                parameters=run.parameters,
            )
            load = (load_before + os.getloadavg()[0]) / 2
            crypto_runs.append((candidate.total_seconds, load))
            if crypto is None or candidate.total_seconds < crypto.total_seconds:
                crypto = candidate
        assert crypto is not None
        run = E2eRun(**{**_shallow(run), "stages": _match_bench_stages(run.stages, crypto)})
    if run.parameters is None:
        notes.append("the computation's parameters were not found; crypto-only used its own")
    return E2eBenchReport(config, workload, run, crypto, notes, runs, crypto_runs)


def _shallow(run: E2eRun) -> dict[str, Any]:
    return {name: getattr(run, name) for name in run.__dataclass_fields__}


def format_e2e_report(report: E2eBenchReport) -> str:
    """A human-readable table."""
    c, w, r = report.config, report.workload, report.run
    lines = [
        f"e2e {c.protocol}: N={w.registers:,} registers ({w.distinct_indexes:,} distinct indexes; "
        f"per EDP {', '.join(f'{k} {v:,}' for k, v in w.registers_per_edp.items())}), "
        f"population {w.population_size:,}, P={c.resolved_parallelism}, MF={c.max_frequency}",
        f"{'duchy':<11}{'stage':<24}{'start s':>9}{'stage s':>9}{'crypto s':>9}{'rpc s':>8}"
        f"{'bench':>9}{'bench s':>9}",
    ]
    for s in r.stages:
        mark = "*" if s.on_critical_path else " "
        lines.append(
            f"{s.duchy:<11}{s.stage:<23}{mark}{s.started_s:>9.2f}{s.seconds:>9.2f}"
            f"{_f(s.crypto_seconds):>9}{_f(s.rpc_seconds):>8}"
            f"{s.bench_stage or '':>9}{_f(s.bench_seconds):>9}"
        )
    lines.append("(* on the critical path)")
    breakdown = report.breakdown()
    lines.append(
        "end to end "
        f"{r.seconds:.2f} s: "
        + ", ".join(
            f"{k.removesuffix('_s').replace('_', ' ')} {v:.2f}" for k, v in breakdown.items()
        )
    )
    if report.crypto is not None:
        ratio = report.ratio or 0.0
        lines.append(
            f"crypto only {report.crypto.total_seconds:.2f} s; ratio {ratio:.3f} "
            f"(target <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'missed'})"
        )
    without_edps, own = report.ratio_without_edps, report.ratio_to_own_crypto
    if without_edps is not None:
        lines.append(f"ratio without the EDPs' fulfilment: {without_edps:.3f}")
    if own is not None:
        lines.append(f"end to end over its own critical-path crypto time: {own:.3f}")
    if len(report.runs) > 1 or len(report.crypto_runs) > 1:
        lines.append(
            "repeats (seconds @ load average): end to end "
            + ", ".join(f"{x.seconds:.1f} @ {x.load_average or 0:.1f}" for x in report.runs)
            + "; crypto only "
            + ", ".join(f"{seconds:.1f} @ {load:.1f}" for seconds, load in report.crypto_runs)
        )
    lines.append(f"reach {r.reach:,} (truth {w.reach:,})")
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)


def _f(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"
