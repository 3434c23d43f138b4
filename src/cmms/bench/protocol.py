"""`cmms bench protocol`: per-stage wall time and peak RSS of a whole protocol run.

Each stage runs in a fresh spawned interpreter, like a mill process: it reads its input blobs
from files (untimed), then decodes, computes and encodes them (timed), and writes its output
blobs (untimed). `baseline_rss_bytes` is what the interpreter held after imports and warm-up;
the kernel's RSS high-water mark is then reset, so peak RSS covers reading the inputs and running
the stage, and `peak - baseline` is the stage's own footprint. The critical path follows each protocol's data dependencies; stages on parallel
branches (the two HMSS workers) count once, by the slower one.

Benchmarks are registered by name (`register_protocol_benchmark`), so other protocols can be added.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import queue
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cmms.crypto.prng import secure_shuffle_in_place
from cmms.crypto.randomness import SeededRandomSource
from cmms.crypto.sharing import split
from cmms.dp.parameters import PrivacyParams
from cmms.protocols.hmss.aggregation_phase import (
    AggregationPhaseRequest,
    complete_reach_and_frequency_aggregation_phase,
    complete_reach_only_aggregation_phase,
)
from cmms.protocols.hmss.parameters import (
    FrequencyVectorParams,
    MeasurementType,
    NoiseConfig,
    NoiseMechanism,
    maximum_combined_frequency,
)
from cmms.protocols.hmss.payloads import (
    SecretSeed,
    decode_aggregation_phase_input,
    decode_frequency_vector,
    decode_shuffle_phase_input,
    encode_aggregation_phase_input,
    encode_frequency_vector,
)
from cmms.protocols.hmss.setup_phase import (
    SetupPhaseRequest,
    assemble_shuffle_phase_request,
    run_setup_phase,
)
from cmms.protocols.hmss.shuffle_phase import (
    complete_reach_and_frequency_shuffle_phase,
    complete_reach_only_shuffle_phase,
)
from cmms.protocols.hmss.simulation import AddressedSeedSealer, fulfilling_worker
from cmms.protocols.hmss.stages import Role
from cmms.protocols.trustee.computing import ComputingRequest, TrusTeeParams, run_computing_stage

BENCH_PRIVACY = PrivacyParams(1.0, 1e-9)
CRITICAL_PATH_TARGET_SECONDS = 3.0
RSS_TARGET_PAYLOAD_FACTOR = 3


@dataclass(frozen=True)
class ProtocolBenchConfig:
    """One benchmark run: N registers, E EDPs, MF, q, noise on or off, measurement type."""

    registers: int
    parallelism: int = 1
    max_frequency: int = 10
    edps: int = 3
    ring_modulus: int = 127
    noise: bool = True
    reach_only: bool = False
    seed: int = 0
    isolated: bool = True  # False: stages run in this process (fast, for tests; RSS is shared)
    repeats: int = 1  # runs of every stage; the fastest time is reported


@dataclass(frozen=True)
class StageFigure:
    """One stage run: wall time of decode + compute + encode, peak and baseline RSS, payloads."""

    name: str
    role: str
    seconds: float
    peak_rss_bytes: int
    baseline_rss_bytes: int
    input_bytes: int
    output_bytes: int
    on_critical_path: bool = True
    cpu_seconds: float | None = None  # process CPU time of the same region: robust to host load


@dataclass(frozen=True)
class ProtocolBenchReport:
    """All stages of one run, the critical path and the targets."""

    protocol: str
    config: ProtocolBenchConfig
    stages: list[StageFigure]
    critical_path: list[str]
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def critical_path_seconds(self) -> float:
        by_name = {stage.name: stage.seconds for stage in self.stages}
        return sum(by_name[name] for name in self.critical_path)

    @property
    def critical_path_cpu_seconds(self) -> float:
        by_name = {stage.name: stage.cpu_seconds or 0.0 for stage in self.stages}
        return sum(by_name[name] for name in self.critical_path)

    @property
    def largest_payload_bytes(self) -> int:
        return max(max(s.input_bytes, s.output_bytes) for s in self.stages)

    @property
    def max_stage_footprint_bytes(self) -> int:
        """The largest `peak - baseline` RSS over the stages."""
        return max(s.peak_rss_bytes - s.baseline_rss_bytes for s in self.stages)

    def to_json(self) -> dict[str, object]:
        """One JSON-ready document."""
        return {
            "benchmark": "protocol",
            "protocol": self.protocol,
            "config": asdict(self.config),
            "stages": [asdict(stage) for stage in self.stages],
            "critical_path": {
                "stages": self.critical_path,
                "seconds": self.critical_path_seconds,
                "cpu_seconds": self.critical_path_cpu_seconds,
            },
            "largest_payload_bytes": self.largest_payload_bytes,
            "max_stage_footprint_bytes": self.max_stage_footprint_bytes,
            "max_peak_rss_bytes": max(s.peak_rss_bytes for s in self.stages),
            "targets": {
                "critical_path_seconds": CRITICAL_PATH_TARGET_SECONDS,
                "critical_path_met": self.critical_path_seconds <= CRITICAL_PATH_TARGET_SECONDS,
                "footprint_bytes": RSS_TARGET_PAYLOAD_FACTOR * self.largest_payload_bytes,
                "footprint_met": self.max_stage_footprint_bytes
                <= RSS_TARGET_PAYLOAD_FACTOR * self.largest_payload_bytes,
            },
            "result": self.result,
        }


ProtocolBenchmark = Callable[[ProtocolBenchConfig], ProtocolBenchReport]
_BENCHMARKS: dict[str, ProtocolBenchmark] = {}


def register_protocol_benchmark(name: str) -> Callable[[ProtocolBenchmark], ProtocolBenchmark]:
    """Register a benchmark under `name` (e.g. `hmss`, `llv2`)."""

    def decorate(benchmark: ProtocolBenchmark) -> ProtocolBenchmark:
        _BENCHMARKS[name] = benchmark
        return benchmark

    return decorate


def protocol_benchmarks() -> list[str]:
    """Registered benchmark names."""
    return sorted(_BENCHMARKS)


def run_protocol_benchmark(name: str, config: ProtocolBenchConfig) -> ProtocolBenchReport:
    """Run the benchmark registered as `name`; `KeyError` names the known ones."""
    if name not in _BENCHMARKS:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(protocol_benchmarks())}")
    if min(config.registers, config.parallelism, config.edps, config.repeats) < 1:
        raise ValueError("registers, parallelism, edps and repeats must be at least 1")
    return _BENCHMARKS[name](config)


# --- Running one stage in a fresh process ------------------------------------------------------

StageKernel = Callable[[list[bytes], dict[str, Any]], list[bytes | bytearray]]


@dataclass(frozen=True)
class StageJob:
    """A stage to run in a child: a kernel of this module, input and output files, parameters."""

    name: str
    role: str
    kernel: str
    inputs: tuple[Path, ...]
    outputs: tuple[Path, ...]
    params: dict[str, Any]
    on_critical_path: bool = True
    warm_up: str | None = None  # a function of this module run before the baseline is taken


def _resident_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return pages * resource.getpagesize()


def _reset_peak_rss() -> None:
    """Restart the kernel's RSS high-water mark, so import-time peaks do not count (Linux)."""
    # Not Linux, or not permitted: the peak then includes what the imports touched.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_bytes() -> int:
    try:
        status = Path("/proc/self/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration, ValueError):  # pragma: no cover - not Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(job: StageJob, results: Any) -> None:
    kernel: StageKernel = globals()[job.kernel]
    if job.warm_up is not None:
        # One-off per-process costs (loading compiled kernels) belong to the mill, not the stage.
        globals()[job.warm_up]()
    baseline = _resident_bytes()
    _reset_peak_rss()
    inputs = [path.read_bytes() for path in job.inputs]
    start, cpu_start = time.perf_counter(), time.process_time()
    outputs = kernel(inputs, job.params)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    for path, data in zip(job.outputs, outputs, strict=True):
        path.write_bytes(data)
    peak = _peak_rss_bytes()
    results.put((job.name, seconds, cpu_seconds, peak, baseline))


def run_jobs(
    jobs: Sequence[StageJob], parallelism: int, isolated: bool = True, repeats: int = 1
) -> list[StageFigure]:
    """Run `jobs` `repeats` times, in spawned children, at most `parallelism` at a time.

    Each figure keeps the fastest time and the largest own footprint over the repetitions.
    """
    runs: dict[str, list[tuple[float, float, int, int]]] = {job.name: [] for job in jobs}
    for _ in range(repeats):
        for name, figure in _run_once(jobs, parallelism, isolated).items():
            runs[name].append(figure)
    figures = []
    for job in jobs:
        seconds = min(run[0] for run in runs[job.name])
        cpu_seconds = min(run[1] for run in runs[job.name])
        _, _, peak, baseline = max(runs[job.name], key=lambda run: run[2] - run[3])
        figures.append(
            StageFigure(
                job.name,
                job.role,
                seconds,
                peak,
                baseline,
                sum(path.stat().st_size for path in job.inputs),
                sum(path.stat().st_size for path in job.outputs),
                job.on_critical_path,
                cpu_seconds,
            )
        )
    return figures


def _run_once(
    jobs: Sequence[StageJob], parallelism: int, isolated: bool
) -> dict[str, tuple[float, float, int, int]]:
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue() if isolated else queue.SimpleQueue()
    figures: dict[str, tuple[float, float, int, int]] = {}
    pending = list(jobs)
    while pending:
        batch, pending = (
            (pending[:parallelism], pending[parallelism:])
            if isolated
            else (pending[:1], pending[1:])
        )
        if not isolated:
            _child(batch[0], results)
        else:
            processes = [context.Process(target=_child, args=(job, results)) for job in batch]
            for process in processes:
                process.start()
            # Children put one small tuple each, so joining before reading cannot deadlock.
            for process, job in zip(processes, batch, strict=True):
                process.join()
                if process.exitcode != 0:
                    raise RuntimeError(f"stage {job.name} failed with exit code {process.exitcode}")
        for _ in batch:
            name, *figure = results.get(timeout=60)
            figures[name] = tuple(figure)
    return figures


# --- HMSS --------------------------------------------------------------------------------------


def _hmss_noise(params: dict[str, Any]) -> NoiseConfig:
    if not params["noise"]:
        return NoiseConfig()
    frequency = None if params["reach_only"] else BENCH_PRIVACY
    return NoiseConfig(NoiseMechanism.DISCRETE_GAUSSIAN, BENCH_PRIVACY, frequency)


def _hmss_cap(params: dict[str, Any]) -> int:
    return 1 if params["reach_only"] else int(params["max_frequency"])


def _hmss_warm_up() -> None:
    secure_shuffle_in_place(np.zeros(3, dtype=np.uint8), bytes(48))


def _hmss_edp(inputs: list[bytes], params: dict[str, Any]) -> list[bytes | bytearray]:
    vector, seed = np.frombuffer(inputs[0], dtype=np.uint8), inputs[1]
    return [encode_frequency_vector(split(vector, params["ring_modulus"], seed))]


def _hmss_setup(inputs: list[bytes], params: dict[str, Any]) -> list[bytes | bytearray]:
    role, sealer = Role[params["role"]], AddressedSeedSealer()
    peer = (
        Role.SECOND_NON_AGGREGATOR
        if role is Role.FIRST_NON_AGGREGATOR
        else Role.FIRST_NON_AGGREGATOR
    )
    held = tuple(
        SecretSeed(rid, sealer.seal(seed, peer), params["registers"], "bench")
        for rid, seed in zip(params["requisitions"], inputs[1:], strict=True)
    )
    return [run_setup_phase(SetupPhaseRequest(role, inputs[0], held)).payload]


def _hmss_shuffle(inputs: list[bytes], params: dict[str, Any]) -> list[bytes | bytearray]:
    role, q, sealer = Role[params["role"]], params["ring_modulus"], AddressedSeedSealer()
    own_seed, peer_input, *bodies = inputs
    shares = {
        rid: decode_frequency_vector(body, q)
        for rid, body in zip(params["requisitions"], bodies, strict=True)
    }
    request = assemble_shuffle_phase_request(
        role,
        own_seed,
        decode_shuffle_phase_input(peer_input),
        shares,
        lambda seed: sealer.open(seed.secret_seed_ciphertext, role),
        _hmss_cap(params),
        q,
        _hmss_noise(params),
    )
    shuffle = (
        complete_reach_only_shuffle_phase
        if params["reach_only"]
        else complete_reach_and_frequency_shuffle_phase
    )
    response = shuffle(request, SeededRandomSource(f"noise-{role.name}"))
    return [encode_aggregation_phase_input(response.share_vector, request.params.register_count)]


def _hmss_aggregate(inputs: list[bytes], params: dict[str, Any]) -> list[bytes | bytearray]:
    q = params["ring_modulus"]
    decoded = []
    for index in range(len(inputs)):
        decoded.append(decode_aggregation_phase_input(inputs[index], q))
        inputs[index] = b""  # the ring-dtype copy is all the stage needs from here on
    first, second = decoded
    request = AggregationPhaseRequest(
        FrequencyVectorParams(
            first.register_count,
            maximum_combined_frequency(_hmss_cap(params), params["edps"]),
            q,
        ),
        (first.share_vector, second.share_vector),
        1.0,
        maximum_frequency=_hmss_cap(params),
        noise=_hmss_noise(params),
    )
    if params["reach_only"]:
        result: dict[str, Any] = asdict(complete_reach_only_aggregation_phase(request))
    else:
        rf = complete_reach_and_frequency_aggregation_phase(request)
        result = {"reach": rf.reach, "frequency_distribution": dict(rf.frequency_distribution)}
    return [json.dumps(result).encode()]


def _edp_vectors(config: ProtocolBenchConfig, cap: int) -> list[np.ndarray]:
    """Synthetic EDP vectors: 60% empty registers, the rest uniform in 1..cap."""
    rng = np.random.default_rng(config.seed)
    vectors = []
    for _ in range(config.edps):
        values = rng.integers(1, cap + 1, config.registers, dtype=np.uint8)
        values[rng.random(config.registers, dtype=np.float32) < 0.6] = 0
        vectors.append(values)
    return vectors


@register_protocol_benchmark("hmss")
def bench_hmss(config: ProtocolBenchConfig) -> ProtocolBenchReport:
    """EDP splits (off the critical path), setup W1 -> W2, both shuffles, aggregation."""
    params: dict[str, Any] = {**asdict(config)}
    cap = _hmss_cap(params)
    workers = (Role.FIRST_NON_AGGREGATOR, Role.SECOND_NON_AGGREGATOR)
    source = SeededRandomSource(config.seed)
    with tempfile.TemporaryDirectory(prefix="cmms-bench-hmss-") as scratch:
        root = Path(scratch)

        def blob(name: str, data: bytes | None = None) -> Path:
            path = root / name
            if data is not None:
                path.write_bytes(data)
            return path

        edp_jobs: list[StageJob] = []
        held: dict[Role, list[tuple[str, int, bytes]]] = {w: [] for w in workers}
        for index, vector in enumerate(_edp_vectors(config, cap)):
            rid = f"requisition-{index:04d}"
            seed = source.randbytes(48)
            held[fulfilling_worker(index)].append((rid, index, seed))
            edp_jobs.append(
                StageJob(
                    f"edp-{index}",
                    "EDP",
                    "_hmss_edp",
                    (blob(f"edp-{index}.raw", vector.tobytes()), blob(f"edp-{index}.seed", seed)),
                    (blob(f"edp-{index}.body"),),
                    params,
                    on_critical_path=False,
                )
            )
        figures = run_jobs(edp_jobs, config.parallelism, config.isolated, config.repeats)

        setup_jobs, shuffle_jobs = [], []
        for worker in workers:
            tag = "w1" if worker is Role.FIRST_NON_AGGREGATOR else "w2"
            peer_tag = "w2" if tag == "w1" else "w1"
            mine = held[worker]
            worker_params = {**params, "role": worker.name, "requisitions": [r for r, _, _ in mine]}
            seeds = [blob(f"edp-{index}.seed") for _, index, _ in mine]
            setup_jobs.append(
                StageJob(
                    f"setup-{tag}",
                    worker.name,
                    "_hmss_setup",
                    (blob(f"{tag}.own_seed", source.randbytes(48)), *seeds),
                    (blob(f"{tag}.shuffle_input"),),
                    worker_params,
                )
            )
            shuffle_jobs.append(
                StageJob(
                    f"shuffle-{tag}",
                    worker.name,
                    "_hmss_shuffle",
                    (
                        blob(f"{tag}.own_seed"),
                        blob(f"{peer_tag}.shuffle_input"),
                        *(blob(f"edp-{index}.body") for _, index, _ in mine),
                    ),
                    (blob(f"{tag}.aggregation_input"),),
                    worker_params,
                    warm_up="_hmss_warm_up",
                )
            )
        figures += run_jobs(setup_jobs, 1, config.isolated, config.repeats)
        figures += run_jobs(shuffle_jobs, config.parallelism, config.isolated, config.repeats)
        aggregate = StageJob(
            "aggregation",
            Role.AGGREGATOR.name,
            "_hmss_aggregate",
            (blob("w1.aggregation_input"), blob("w2.aggregation_input")),
            (blob("result.json"),),
            params,
        )
        figures += run_jobs([aggregate], 1, config.isolated, config.repeats)
        result = json.loads(blob("result.json").read_bytes())
    by_name = {figure.name: figure for figure in figures}
    slower = max(("shuffle-w1", "shuffle-w2"), key=lambda name: by_name[name].seconds)
    return ProtocolBenchReport(
        "hmss", config, figures, ["setup-w1", "setup-w2", slower, "aggregation"], result
    )


# --- TrusTee -----------------------------------------------------------------------------------


def _trustee_params(params: dict[str, Any]) -> TrusTeeParams:
    reach_only = params["reach_only"]
    return TrusTeeParams(
        MeasurementType.REACH if reach_only else MeasurementType.REACH_AND_FREQUENCY,
        1 if reach_only else int(params["max_frequency"]),
        1.0,
        NoiseMechanism.CONTINUOUS_GAUSSIAN if params["noise"] else NoiseMechanism.NONE,
        BENCH_PRIVACY,
        BENCH_PRIVACY,
    )


def _trustee_compute(inputs: list[bytes], params: dict[str, Any]) -> list[bytes | bytearray]:
    request = ComputingRequest(_trustee_params(params), tuple(inputs))
    result = run_computing_stage(request, SeededRandomSource("trustee-noise"))
    distribution = result.frequency_distribution
    document = {
        "reach": result.reach,
        "frequency_distribution": dict(distribution) if distribution is not None else None,
    }
    return [json.dumps(document).encode()]


@register_protocol_benchmark("trustee")
def bench_trustee(config: ProtocolBenchConfig) -> ProtocolBenchReport:
    """The COMPUTING stage over E plain byte vectors (envelope decryption not included)."""
    params: dict[str, Any] = {**asdict(config)}
    _trustee_params(params)  # fail early on bad parameters
    cap = 1 if config.reach_only else config.max_frequency
    with tempfile.TemporaryDirectory(prefix="cmms-bench-trustee-") as scratch:
        root = Path(scratch)
        inputs = []
        for index, vector in enumerate(_edp_vectors(config, cap)):
            path = root / f"edp-{index}.bytes"
            path.write_bytes(vector.tobytes())
            inputs.append(path)
        job = StageJob(
            "computing",
            "AGGREGATOR",
            "_trustee_compute",
            tuple(inputs),
            (root / "result.json",),
            params,
        )
        figures = run_jobs([job], 1, config.isolated, config.repeats)
        result = json.loads((root / "result.json").read_bytes())
    return ProtocolBenchReport("trustee", config, figures, ["computing"], result)


def format_report(report: ProtocolBenchReport) -> str:
    """A human-readable table."""
    mib = 1024 * 1024
    lines = [
        f"{report.protocol}: N={report.config.registers:,} EDPs={report.config.edps} "
        f"MF={report.config.max_frequency} q={report.config.ring_modulus} "
        f"noise={'on' if report.config.noise else 'off'} "
        f"{'reach-only' if report.config.reach_only else 'R&F'} P={report.config.parallelism}",
        f"{'stage':<14}{'role':<24}{'seconds':>9}{'cpu s':>8}{'peak MiB':>10}{'own MiB':>9}"
        f"{'in MiB':>9}{'out MiB':>9}",
    ]
    for s in report.stages:
        marker = "" if s.on_critical_path else "  (off critical path)"
        lines.append(
            f"{s.name:<14}{s.role:<24}{s.seconds:>9.3f}{s.cpu_seconds or 0.0:>8.3f}"
            f"{s.peak_rss_bytes / mib:>10.1f}"
            f"{(s.peak_rss_bytes - s.baseline_rss_bytes) / mib:>9.1f}"
            f"{s.input_bytes / mib:>9.1f}{s.output_bytes / mib:>9.1f}{marker}"
        )
    document = report.to_json()
    targets = document["targets"]
    assert isinstance(targets, dict)
    lines.append(
        f"critical path: {' -> '.join(report.critical_path)} = {report.critical_path_seconds:.3f} s "
        f"wall, {report.critical_path_cpu_seconds:.3f} s CPU "
        f"(target {CRITICAL_PATH_TARGET_SECONDS} s: {'met' if targets['critical_path_met'] else 'missed'})"
    )
    lines.append(
        f"largest payload {report.largest_payload_bytes / mib:.1f} MiB; largest stage footprint "
        f"{report.max_stage_footprint_bytes / mib:.1f} MiB (target <= {RSS_TARGET_PAYLOAD_FACTOR}x: "
        f"{'met' if targets['footprint_met'] else 'missed'})"
    )
    lines.append(f"result: {json.dumps(report.result)}")
    return "\n".join(lines)


# LLv2 and reach-only LLv2 register themselves ("llv2", "ro-llv2"); imported last because that
# module builds on the definitions above.
from cmms.bench import llv2 as _llv2  # noqa: E402, F401
