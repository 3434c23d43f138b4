"""`cmms bench protocol llv2|ro-llv2` at toy sizes: counted operations match the protocol's
per-record costs, the reference model is priced, and the result is the plaintext estimate."""

from __future__ import annotations

from cmms.bench.llv2 import LlBenchConfig, format_llv2_report, run_llv2_bench
from cmms.bench.protocol import ProtocolBenchConfig, protocol_benchmarks, run_protocol_benchmark
from cmms.sketch import estimate_reach_with_sampling

N = 24


def test_llv2_counts_and_result() -> None:
    report = run_llv2_bench(
        LlBenchConfig(registers=N, noise=False, isolated=False, max_frequency=3)
    )
    by_name = {s.name: s for s in report.stages}
    # Phase one at a non-aggregator: blind (3 var-base) and two re-randomisations (4 fixed-base).
    assert by_name["p1-w0"].operations["V"] == 3 * N
    assert by_name["p1-w0"].operations["F"] == 4 * N
    assert by_name["p1-w0"].operations["D"] == 6 * N
    # Every index is distinct: N singleton groups, N tuples, N SKA rows of F-1 = 2 entries.
    assert by_name["p1-a"].output_bytes == 264 * N
    assert by_name["p2-a"].output_bytes == 66 * 2 * N
    assert by_name["p3-w0"].operations["V"] == 2 * N
    assert all(s.reference_seconds > 0 for s in report.stages if not s.name.startswith("setup"))
    assert report.result["reach"] == estimate_reach_with_sampling(12.0, 100_000, N, 1.0)
    assert abs(sum(report.result["frequency"].values()) - 1) < 1e-9
    assert report.ratio > 0 and "ratio" in format_llv2_report(report)


def test_reach_only_through_the_protocol_registry() -> None:
    assert {"llv2", "ro-llv2"} <= set(protocol_benchmarks())
    report = run_protocol_benchmark(
        "ro-llv2", ProtocolBenchConfig(registers=N, noise=False, isolated=False)
    )
    assert report.result["reach"] == estimate_reach_with_sampling(12.0, 100_000, N, 1.0)
    extra = report.result["llv2_bench"]
    # One blind per register, plus removing its layer from the excess-noise ciphertext.
    assert extra["operations"]["exec-w0"]["V"] == 3 * N + 1
    assert extra["reference_model_seconds"] > 0
    assert [s.name for s in report.stages][-1] == "exec-a"
