"""`cmms bench protocol llv2|ro-llv2`: per-stage wall time, peak RSS and EC operation counts of a
whole LLv2 (or reach-only LLv2) run, and its ratio to the reference model.

Each stage runs in a fresh spawned process, like a mill: it reads its input blobs from files
(untimed), runs the stage function with `parallelism` worker processes (timed) and writes its
outputs (untimed). EC operations are counted by wrapping the batch functions of
`cmms.crypto.group` in that process; the counters live in shared memory, so the forked chunk
workers add to them too.

The reference model prices the reference implementation's per-record operation counts
(docs performance.md §5, "Reference ops") at the unit costs (variable-base multiplication, add,
decompress, compress, hash-to-curve) measured single-threaded in the stage's own process right
before the stage runs, so that both sides see the same load on a shared host. The reference's
threading is kept: its per-register worker loops and the aggregator's index decryption run as
fast as `parallelism` processes measured at that moment allow (at most 95% per thread); its
same-key aggregation, phase-two and phase-three aggregator loops are serial. EDP encryption is
excluded from both sides.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from cmms.bench.protocol import (
    ProtocolBenchConfig,
    ProtocolBenchReport,
    StageFigure,
    register_protocol_benchmark,
)
from cmms.crypto import elgamal, group
from cmms.crypto.elgamal import KeyPair
from cmms.crypto.randomness import SeededRandomSource
from cmms.dp import PrivacyParams
from cmms.protocols.liquid_legions.encryption import encrypt_records
from cmms.protocols.liquid_legions.keys import DuchyKeys
from cmms.protocols.liquid_legions.named_points import unit_multiples
from cmms.protocols.liquid_legions.noise import NoiseConfig, NoiseMechanism, ReachNoiseConfig
from cmms.protocols.liquid_legions.parallel import DEFAULT_CHUNK_RECORDS, ExecutionOptions
from cmms.protocols.liquid_legions.parameters import LiquidLegionsParameters
from cmms.protocols.llv2 import execution_phase_one as p1
from cmms.protocols.llv2 import execution_phase_three as p3
from cmms.protocols.llv2 import execution_phase_two as p2
from cmms.protocols.llv2 import setup_phase as rf_setup
from cmms.protocols.llv2.parameters import ReachAndFrequencyParameters
from cmms.protocols.llv2.simulation import duchy_key_pairs, ring
from cmms.protocols.reach_only_llv2 import execution_phase as ro_exec
from cmms.protocols.reach_only_llv2 import setup_phase as ro_setup

OPERATIONS = ("V", "F", "A", "D", "E", "H")  # var-base, fixed-base, add, decode, encode, hash
REFERENCE_THREAD_EFFICIENCY = 0.95
TARGET_RATIO = 0.65
# Noise as in performance.md §8.2 scenario B (geometric; ln3/10 for the MPC noises,
# 0.35·ln3 for reach and frequency, delta 2e-6).
_LN3 = math.log(3)
BENCH_NOISE = NoiseConfig(
    NoiseMechanism.GEOMETRIC,
    ReachNoiseConfig(
        PrivacyParams(_LN3 / 10, 2e-6),
        PrivacyParams(_LN3 / 10, 2e-6),
        PrivacyParams(0.35 * _LN3, 2e-6),
    ),
    PrivacyParams(0.35 * _LN3, 2e-6),
)


@dataclass(frozen=True)
class LlBenchConfig:
    """One run: N combined registers over `edps` EDPs, D duchies, F, noise on or off."""

    registers: int
    parallelism: int = 1
    max_frequency: int = 10
    duchies: int = 3
    edps: int = 3
    noise: bool = True
    reach_only: bool = False
    seed: int = 0
    chunk_records: int = DEFAULT_CHUNK_RECORDS
    isolated: bool = True  # False: stages run in this process (for tests; RSS is shared)


@dataclass(frozen=True)
class LlStageFigure:
    """One stage: wall time, peak RSS of the stage process and of its largest worker, op counts."""

    name: str
    role: str
    seconds: float
    baseline_rss_bytes: int
    peak_rss_bytes: int
    worker_peak_rss_bytes: int
    input_bytes: int
    output_bytes: int
    operations: dict[str, int]
    reference_seconds: float
    unit_costs_us: dict[str, float]
    reference_speedup: float
    on_critical_path: bool = True


@dataclass(frozen=True)
class LlBenchReport:
    """All stages, the calibration and the totals against the reference model."""

    protocol: str
    config: LlBenchConfig
    unit_costs_us: dict[str, float]
    stages: list[LlStageFigure]
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(s.seconds for s in self.stages if s.on_critical_path)

    @property
    def reference_seconds(self) -> float:
        return sum(s.reference_seconds for s in self.stages if s.on_critical_path)

    @property
    def ratio(self) -> float:
        return self.total_seconds / self.reference_seconds if self.reference_seconds else 0.0

    def to_json(self) -> dict[str, object]:
        """One JSON-ready document."""
        return {
            "benchmark": "protocol",
            "protocol": self.protocol,
            "config": asdict(self.config),
            "unit_costs_us": self.unit_costs_us,
            "stages": [asdict(s) for s in self.stages],
            "total_seconds": self.total_seconds,
            "reference_model_seconds": self.reference_seconds,
            "ratio_to_reference": self.ratio,
            "target_ratio": TARGET_RATIO,
            "target_met": self.ratio <= TARGET_RATIO,
            "result": self.result,
        }


# ---------------------------------------------------------------------------------------------
# Calibration and operation counting


def _best_us(action: Callable[[], object], count: int, repeats: int = 3) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def calibrate(count: int = 2000) -> dict[str, float]:
    """Single-thread µs per operation of this process's group implementation."""
    random = SeededRandomSource("calibration")
    scalars = elgamal.random_scalars(random, count)
    with group.generator_table().multiply(scalars) as points:
        encoded = group.encode_points(points)
        scalar = scalars[0]
        costs = {
            "V": _best_us(lambda: group.multiply(points, scalar).close(), count),
            "F": _best_us(lambda: group.generator_table().multiply(scalars).close(), count),
            "A": _best_us(lambda: group.add(points, points).close(), count),
            "D": _best_us(lambda: group.decode_points(encoded).close(), count),
            "E": _best_us(lambda: group.encode_points(points), count),
        }
    messages = [str(i).encode() for i in range(count // 4)]
    costs["H"] = _best_us(lambda: group.hash_to_points(messages).close(), len(messages))
    return costs


def _multiplications(count: int) -> None:
    scalars = elgamal.random_scalars(SeededRandomSource("speedup"), count)
    with group.generator_table().multiply(scalars) as points:
        group.multiply(points, scalars[0]).close()


def _wall(processes: int, count: int) -> float:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_multiplications, args=(count,)) for _ in range(processes)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - start


def parallel_speedup(processes: int, count: int = 1500, repeats: int = 3) -> float:
    """How much faster `processes` processes get the same per-process work done than one, now."""
    if processes <= 1:
        return 1.0
    single = min(_wall(1, count) for _ in range(repeats))
    together = min(_wall(processes, count) for _ in range(repeats))
    return processes * single / together


@contextmanager
def counting_operations() -> Iterator[Any]:
    """Count EC operations (batch sizes) here and in forked workers; yields the shared counters."""
    counters = multiprocessing.get_context("fork").Array("q", len(OPERATIONS))
    slot = {name: i for i, name in enumerate(OPERATIONS)}

    def bump(name: str, amount: int) -> None:
        with counters.get_lock():
            counters[slot[name]] += amount

    originals: dict[tuple[Any, str], Any] = {}

    def wrap(owner: Any, attribute: str, name: str, size: Callable[..., int]) -> None:
        original = getattr(owner, attribute)
        originals[(owner, attribute)] = original

        def counted(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            bump(name, size(*args, **kwargs))
            return result

        setattr(owner, attribute, counted)

    wrap(group, "multiply", "V", lambda points, *a, **k: len(points))
    wrap(group, "multiply_each", "V", lambda points, *a, **k: len(points))
    wrap(group.FixedBaseTable, "multiply", "F", lambda self, scalars, **k: len(scalars))
    wrap(group, "add", "A", lambda a, *r, **k: len(a))
    wrap(group, "subtract", "A", lambda a, *r, **k: len(a))
    wrap(
        group,
        "decode_points",
        "D",
        lambda buf, offset=0, stride=group.POINT_SIZE: len(buf) // stride,
    )
    wrap(group, "encode_points_into", "E", lambda points, *a, **k: len(points))
    wrap(group, "hash_to_curve", "H", lambda *a, **k: 1)
    wrap(group, "hash_to_points", "H", lambda messages: len(messages))
    try:
        yield counters
    finally:
        for (owner, attribute), original in originals.items():
            setattr(owner, attribute, original)


# ---------------------------------------------------------------------------------------------
# Stage jobs


@dataclass(frozen=True)
class _Job:
    name: str
    role: str
    kernel: str
    inputs: tuple[Path, ...]
    outputs: tuple[Path, ...]
    params: dict[str, Any]
    on_critical_path: bool = True


@dataclass(frozen=True)
class _JobResult:
    seconds: float
    unit_costs_us: dict[str, float]
    speedup: float
    baseline_rss_bytes: int
    peak_rss_bytes: int
    worker_peak_rss_bytes: int
    operations: dict[str, int]
    stats: dict[str, Any]


Kernel = Callable[[list[bytes], dict[str, Any]], tuple[list[bytes], dict[str, Any]]]


def _options(params: dict[str, Any]) -> ExecutionOptions:
    return ExecutionOptions(params["parallelism"], params["chunk_records"])


def _rng(params: dict[str, Any]) -> SeededRandomSource:
    return SeededRandomSource(f"bench/{params['seed']}/{params['stage']}")


def _rf_setup(inputs: list[bytes], params: dict[str, Any]) -> tuple[list[bytes], dict[str, Any]]:
    own, received = inputs[: params["own"]], inputs[params["own"] :]
    request = rf_setup.SetupPhaseRequest(
        params["parameters"], params["keys"], tuple(own), tuple(received)
    )
    return [rf_setup.setup_phase(request, _rng(params), _options(params)).registers], {}


def _rf_phase_one(
    inputs: list[bytes], params: dict[str, Any]
) -> tuple[list[bytes], dict[str, Any]]:
    request = p1.ExecutionPhaseOneRequest(params["parameters"], params["keys"], inputs[0])
    if params["aggregator"]:
        response = p1.execution_phase_one_aggregator(request, _rng(params), _options(params))
        stats = {"groups": response.kept_groups, "members": response.kept_registers}
        return [response.payload], stats
    return [
        p1.execution_phase_one_non_aggregator(request, _rng(params), _options(params)).payload
    ], {}


def _rf_phase_two(
    inputs: list[bytes], params: dict[str, Any]
) -> tuple[list[bytes], dict[str, Any]]:
    request = p2.ExecutionPhaseTwoRequest(params["parameters"], params["keys"], inputs[0])
    if params["aggregator"]:
        response = p2.execution_phase_two_aggregator(request, _rng(params), _options(params))
        stats = {"reach": response.reach, "active_registers": response.active_registers}
        return [response.ska_matrix], stats
    return [
        p2.execution_phase_two_non_aggregator(request, _rng(params), _options(params)).tuples
    ], {}


def _rf_phase_three(
    inputs: list[bytes], params: dict[str, Any]
) -> tuple[list[bytes], dict[str, Any]]:
    request = p3.ExecutionPhaseThreeRequest(params["parameters"], params["keys"], inputs[0])
    if params["aggregator"]:
        response = p3.execution_phase_three_aggregator(request, _options(params))
        stats = {"histogram": list(response.histogram), "frequency": response.frequency}
        return [json.dumps(stats).encode()], stats
    return [p3.execution_phase_three_non_aggregator(request, _options(params)).ska_matrix], {}


def _ro_setup(inputs: list[bytes], params: dict[str, Any]) -> tuple[list[bytes], dict[str, Any]]:
    own, received = inputs[: params["own"]], inputs[params["own"] :]
    request = ro_setup.SetupPhaseRequest(
        params["parameters"], params["keys"], tuple(own), tuple(received)
    )
    return [ro_setup.setup_phase(request, _rng(params), _options(params)).payload], {}


def _ro_execution(
    inputs: list[bytes], params: dict[str, Any]
) -> tuple[list[bytes], dict[str, Any]]:
    request = ro_exec.ExecutionPhaseRequest(params["parameters"], params["keys"], inputs[0])
    if params["aggregator"]:
        response = ro_exec.execution_phase_aggregator(request, _options(params))
        stats = asdict(response)
        return [json.dumps(stats).encode()], stats
    return [
        ro_exec.execution_phase_non_aggregator(request, _rng(params), _options(params)).payload
    ], {}


_KERNELS: dict[str, Kernel] = {
    "rf_setup": _rf_setup,
    "rf_phase_one": _rf_phase_one,
    "rf_phase_two": _rf_phase_two,
    "rf_phase_three": _rf_phase_three,
    "ro_setup": _ro_setup,
    "ro_execution": _ro_execution,
}


def _resident_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return pages * resource.getpagesize()


def _execute(job: _Job) -> _JobResult:
    # Priced at this moment's costs: on a shared host the load changes from stage to stage.
    costs = calibrate(500)
    speedup = parallel_speedup(job.params["parallelism"])
    baseline = _resident_bytes()
    inputs = [path.read_bytes() for path in job.inputs]
    with counting_operations() as counters:
        start = time.perf_counter()
        outputs, stats = _KERNELS[job.kernel](inputs, job.params)
        seconds = time.perf_counter() - start
        operations = {name: int(counters[i]) for i, name in enumerate(OPERATIONS)}
    for path, data in zip(job.outputs, outputs, strict=True):
        path.write_bytes(data)
    return _JobResult(
        seconds,
        costs,
        speedup,
        baseline,
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
        operations,
        stats,
    )


def _child(job: _Job, results: Any) -> None:
    results.put(_execute(job))


def _run(job: _Job, isolated: bool) -> _JobResult:
    if not isolated:
        return _execute(job)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_child, args=(job, results))
    process.start()
    result: _JobResult = results.get()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"stage {job.name} failed with exit code {process.exitcode}")
    return result


# ---------------------------------------------------------------------------------------------
# Reference model (performance.md §5)


def _cost(costs: dict[str, float], **ops: float) -> float:
    return sum(costs[name] * count for name, count in ops.items()) / 1e6


def _encrypts(costs: dict[str, float], count: int) -> float:
    # Reference Encrypt: two var-base mults, one add, the message decoded, u and e encoded.
    return _cost(costs, V=2 * count, A=count, D=count, E=2 * count)


def reference_seconds(
    kernel: str,
    aggregator: bool,
    records: int,
    stats: dict[str, Any],
    config: LlBenchConfig,
    costs: dict[str, float],
    noise_records: int,
    speedup: float,
) -> float:
    """The reference's time for one stage over `records` input records (§5 op counts).

    Its multithreaded loops run `speedup` times faster than one thread, at most
    `parallelism · REFERENCE_THREAD_EFFICIENCY`.
    """
    threads = min(speedup, config.parallelism * REFERENCE_THREAD_EFFICIENCY)
    threads = max(threads, 1.0)
    f = config.max_frequency
    if kernel in ("rf_setup", "ro_setup"):
        per_noise = 3 if kernel == "rf_setup" else 1
        return _encrypts(costs, per_noise * noise_records) + _cost(costs, H=noise_records)
    if kernel == "rf_phase_one" and not aggregator:
        return _cost(costs, V=7 * records, A=7 * records, D=12 * records, E=11 * records) / threads
    if kernel == "rf_phase_one":
        decrypt = _cost(costs, V=records, A=records, D=2 * records, E=records) / threads
        groups, extra = stats["groups"], stats["members"] - stats["groups"]
        serial = _cost(costs, V=8 * groups, A=11 * groups, D=6 * groups, E=10 * groups)
        serial += _cost(costs, V=4 * extra, A=6 * extra, D=4 * extra)
        return decrypt + serial + _encrypts(costs, 4 * noise_records)
    if kernel == "rf_phase_two" and not aggregator:
        per = _cost(costs, V=11 * records, A=15 * records, D=22 * records, E=19 * records)
        return per / threads + _encrypts(costs, 4 * noise_records)
    if kernel == "rf_phase_two":
        rows = stats["rows"]
        zero_tests = _cost(costs, V=3 * records, A=3 * records, D=8 * records)
        return zero_tests + _cost(
            costs, V=2 * (f - 1) * rows, A=2 * (f - 1) * rows, E=2 * (f - 1) * rows
        )
    if kernel == "rf_phase_three" and not aggregator:
        return _cost(costs, V=records, A=records, D=2 * records, E=records) / threads
    if kernel == "rf_phase_three":
        tested = stats["tested"]
        return _cost(costs, V=tested, A=tested, D=2 * tested)
    if kernel == "ro_execution" and not aggregator:
        return _cost(costs, V=3 * records, A=records, D=4 * records, E=3 * records) / threads
    if kernel == "ro_execution":
        return _cost(costs, V=records, A=records, D=2 * records, E=records) / threads
    raise ValueError(f"no reference model for {kernel}")


# ---------------------------------------------------------------------------------------------
# Inputs


def _edp_payloads(config: LlBenchConfig, full_key: bytes, options: ExecutionOptions) -> list[bytes]:
    """Synthetic encrypted sketches: N distinct indices split over the EDPs (all singleton groups,
    the model's worst case), random keys, counts uniform in 1..F+1."""
    generator = np.random.default_rng(config.seed)
    indexes = generator.choice(10 * config.registers, size=config.registers, replace=False)
    random = SeededRandomSource(f"bench/{config.seed}/edps")
    index_points = [group.hash_to_curve(str(int(i)).encode()) for i in indexes]
    fields = [index_points]
    if not config.reach_only:
        keys = generator.integers(1, 10_000_000, size=config.registers)
        cache: dict[int, bytes] = {}
        key_points = []
        for key in keys:
            value = int(key)
            if value not in cache:
                cache[value] = group.hash_to_curve(str(value).encode())
            key_points.append(cache[value])
        multiples = unit_multiples(config.max_frequency + 1)
        counts = generator.integers(1, config.max_frequency + 2, size=config.registers)
        fields += [key_points, [multiples[int(c) - 1] for c in counts]]
    blob = encrypt_records(fields, [full_key] * len(fields), random, "edp", options)
    record = len(fields) * elgamal.CIPHERTEXT_SIZE
    bounds = np.linspace(0, config.registers, config.edps + 1).astype(int)
    return [blob[start * record : stop * record] for start, stop in itertools.pairwise(bounds)]


def _parameters(config: LlBenchConfig) -> LiquidLegionsParameters:
    common: dict[str, Any] = {
        "decay_rate": 12.0,
        "max_size": max(10 * config.registers, 100_000),
        "duchies": config.duchies,
        "requisitions": config.edps,
        "noise": BENCH_NOISE if config.noise else None,
    }
    if config.reach_only:
        return LiquidLegionsParameters(**common)
    return ReachAndFrequencyParameters(**common, max_frequency=config.max_frequency)


# ---------------------------------------------------------------------------------------------
# Runs


def run_llv2_bench(
    config: LlBenchConfig, parameters: LiquidLegionsParameters | None = None
) -> LlBenchReport:
    """Run every stage of every duchy once, in ring order, each in its own process.

    `parameters` replaces the benchmark's own protocol parameters (sketch, noise), e.g. with a
    real computation's, to compare the two at the same settings.
    """
    if config.registers < 1 or config.duchies < 3 or config.edps < 1:
        raise ValueError("need registers >= 1, duchies >= 3, edps >= 1")
    costs = calibrate()
    parameters = parameters if parameters is not None else _parameters(config)
    pairs: list[KeyPair] = duchy_key_pairs(config.duchies, SeededRandomSource(config.seed))
    keys: list[DuchyKeys] = ring(pairs)
    options = ExecutionOptions(config.parallelism, config.chunk_records)
    base: dict[str, Any] = {
        "parallelism": config.parallelism,
        "chunk_records": config.chunk_records,
        "seed": config.seed,
        "parameters": parameters,
    }
    figures: list[LlStageFigure] = []
    with tempfile.TemporaryDirectory(prefix="cmms-bench-llv2-") as scratch:
        root = Path(scratch)
        edps = _edp_payloads(config, keys[0].full_key, options)
        edp_paths = []
        for i, blob in enumerate(edps):
            path = root / f"edp-{i}"
            path.write_bytes(blob)
            edp_paths.append(path)
        record = elgamal.CIPHERTEXT_SIZE * (1 if config.reach_only else 3)
        noise_per_duchy = _noise_records(parameters, config.reach_only)
        frequency_noise = _frequency_noise_records(parameters, config)

        def stage(
            name: str,
            kernel: str,
            duchy: int,
            inputs: list[Path],
            own: int = 0,
            on_critical_path: bool = True,
        ) -> tuple[Path, dict[str, Any]]:
            aggregator = duchy == config.duchies - 1
            output = root / name
            params = {
                **base,
                "keys": keys[duchy],
                "aggregator": aggregator,
                "own": own,
                "stage": name,
            }
            job = _Job(
                name,
                "AGGREGATOR" if aggregator else f"NON_AGGREGATOR_{duchy}",
                kernel,
                tuple(inputs),
                (output,),
                params,
                on_critical_path,
            )
            result = _run(job, config.isolated)
            input_bytes = sum(p.stat().st_size for p in inputs)
            records = _records(kernel, input_bytes, record, config, len(inputs) - own)
            stats = dict(result.stats)
            if kernel == "rf_phase_two" and aggregator:
                stats["rows"] = output.stat().st_size // (66 * (config.max_frequency - 1))
            if kernel == "rf_phase_three" and aggregator:
                stats["tested"] = _tested(stats["histogram"], config.max_frequency)
            noise = noise_per_duchy if kernel.endswith("setup") else 0
            if kernel in ("rf_phase_one", "rf_phase_two"):
                noise = frequency_noise if (kernel == "rf_phase_one") == aggregator else 0
            figures.append(
                LlStageFigure(
                    name,
                    job.role,
                    result.seconds,
                    result.baseline_rss_bytes,
                    result.peak_rss_bytes,
                    result.worker_peak_rss_bytes,
                    input_bytes,
                    output.stat().st_size,
                    result.operations,
                    reference_seconds(
                        kernel,
                        aggregator,
                        records,
                        stats,
                        config,
                        result.unit_costs_us,
                        noise,
                        result.speedup,
                    ),
                    result.unit_costs_us,
                    result.speedup,
                    on_critical_path,
                )
            )
            return output, stats

        edps_of = [edp_paths[d :: config.duchies] for d in range(config.duchies)]
        prefix = "ro_" if config.reach_only else "rf_"
        workers = range(config.duchies - 1)
        last = config.duchies - 1
        setups = [
            stage(f"setup-w{d}", f"{prefix}setup", d, edps_of[d], own=len(edps_of[d]))[0]
            for d in workers
        ]
        slowest = max(range(len(setups)), key=lambda d: figures[d].seconds)
        for d in workers:
            if d != slowest:  # non-aggregators set up in parallel: the slowest one counts
                figures[d] = replace(figures[d], on_critical_path=False)
        payload, _ = stage(
            "setup-a", f"{prefix}setup", last, [*edps_of[last], *setups], own=len(edps_of[last])
        )
        result: dict[str, Any]
        if config.reach_only:
            for d in workers:
                payload, _ = stage(f"exec-w{d}", "ro_execution", d, [payload])
            _, result = stage("exec-a", "ro_execution", last, [payload])
        else:
            for phase, kernel in (("p1", "rf_phase_one"), ("p2", "rf_phase_two")):
                for d in workers:
                    payload, _ = stage(f"{phase}-w{d}", kernel, d, [payload])
                payload, stats = stage(f"{phase}-a", kernel, last, [payload])
            result = {"reach": stats["reach"], "active_registers": stats["active_registers"]}
            if config.max_frequency > 1:
                for d in workers:
                    payload, _ = stage(f"p3-w{d}", "rf_phase_three", d, [payload])
                _, three = stage("p3-a", "rf_phase_three", last, [payload])
                result["frequency"] = three["frequency"]
    name = "ro-llv2" if config.reach_only else "llv2"
    return LlBenchReport(name, config, costs, figures, result)


def _records(
    kernel: str, input_bytes: int, record: int, config: LlBenchConfig, received: int
) -> int:
    if kernel == "ro_execution":
        return (input_bytes - 66) // 66
    if kernel.endswith("setup"):
        return 0
    if kernel == "rf_phase_two":
        return input_bytes // 264
    if kernel == "rf_phase_three":
        return input_bytes // 66
    return input_bytes // record


def _tested(histogram: list[int], max_frequency: int) -> int:
    # A row whose first zero is in column t costs t decryptions; rows without a zero cost F-1.
    tested = sum(count * (t + 1) for t, count in enumerate(histogram[:-1]))
    return tested + histogram[-1] * (max_frequency - 1)


def _noise_records(parameters: LiquidLegionsParameters, reach_only: bool) -> int:
    noisers = parameters.reach_noisers
    if noisers is None:
        return 0
    return noisers.total_registers(parameters.requisitions) + (2 if reach_only else 0)


def _frequency_noise_records(parameters: LiquidLegionsParameters, config: LlBenchConfig) -> int:
    noiser = parameters.frequency_noiser
    if config.reach_only or config.max_frequency < 2 or noiser is None:
        return 0
    return 2 * noiser.offset * (config.max_frequency + 1)


def format_llv2_report(report: LlBenchReport) -> str:
    """A human-readable table."""
    mib = 1024 * 1024
    c = report.config
    lines = [
        f"{report.protocol}: N={c.registers:,} D={c.duchies} EDPs={c.edps} F={c.max_frequency} "
        f"noise={'on' if c.noise else 'off'} P={c.parallelism}",
        "unit costs (µs, 1 thread): "
        + ", ".join(f"{k}={v:.1f}" for k, v in report.unit_costs_us.items()),
        f"{'stage':<10}{'seconds':>9}{'ref s':>9}{'V µs':>7}{'Px':>6}{'peak MiB':>10}{'wrk MiB':>9}"
        f"{'in MiB':>9}{'out MiB':>9}  ops (V F A D E H)",
    ]
    for s in report.stages:
        ops = " ".join(str(s.operations[k]) for k in OPERATIONS)
        marker = "" if s.on_critical_path else "  (parallel, not on path)"
        lines.append(
            f"{s.name:<10}{s.seconds:>9.2f}{s.reference_seconds:>9.2f}"
            f"{s.unit_costs_us['V']:>7.1f}{s.reference_speedup:>6.2f}"
            f"{s.peak_rss_bytes / mib:>10.0f}{s.worker_peak_rss_bytes / mib:>9.0f}"
            f"{s.input_bytes / mib:>9.1f}{s.output_bytes / mib:>9.1f}  {ops}{marker}"
        )
    lines.append(
        f"total {report.total_seconds:.1f} s, reference model {report.reference_seconds:.1f} s, "
        f"ratio {report.ratio:.3f} (target <= {TARGET_RATIO}: "
        f"{'met' if report.ratio <= TARGET_RATIO else 'missed'})"
    )
    lines.append(f"result: {json.dumps(report.result)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# `cmms bench protocol llv2|ro-llv2`


def _as_protocol_report(report: LlBenchReport, config: ProtocolBenchConfig) -> ProtocolBenchReport:
    stages = [
        StageFigure(
            s.name,
            s.role,
            s.seconds,
            max(s.peak_rss_bytes, s.worker_peak_rss_bytes),
            s.baseline_rss_bytes,
            s.input_bytes,
            s.output_bytes,
            s.on_critical_path,
        )
        for s in report.stages
    ]
    document = report.to_json()
    extra = {
        key: document[key]
        for key in (
            "unit_costs_us",
            "total_seconds",
            "reference_model_seconds",
            "ratio_to_reference",
            "target_ratio",
            "target_met",
        )
    }
    extra["operations"] = {s.name: s.operations for s in report.stages}
    extra["reference_stage_seconds"] = {s.name: s.reference_seconds for s in report.stages}
    return ProtocolBenchReport(
        report.protocol,
        config,
        stages,
        [s.name for s in report.stages if s.on_critical_path],
        {**report.result, "llv2_bench": extra},
    )


def _from_protocol_config(config: ProtocolBenchConfig, reach_only: bool) -> LlBenchConfig:
    return LlBenchConfig(
        registers=config.registers,
        parallelism=config.parallelism,
        max_frequency=config.max_frequency,
        edps=config.edps,
        noise=config.noise,
        reach_only=reach_only,
        seed=config.seed,
        isolated=config.isolated,
    )


@register_protocol_benchmark("llv2")
def bench_llv2(config: ProtocolBenchConfig) -> ProtocolBenchReport:
    """Reach-and-frequency LLv2 over 3 duchies (see `run_llv2_bench`)."""
    report = run_llv2_bench(_from_protocol_config(config, reach_only=False))
    return _as_protocol_report(report, config)


@register_protocol_benchmark("ro-llv2")
def bench_reach_only_llv2(config: ProtocolBenchConfig) -> ProtocolBenchReport:
    """Reach-only LLv2 over 3 duchies (see `run_llv2_bench`)."""
    report = run_llv2_bench(_from_protocol_config(config, reach_only=True))
    return _as_protocol_report(report, config)
