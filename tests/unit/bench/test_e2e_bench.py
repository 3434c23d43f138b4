"""`cmms bench e2e` without processes: sizing the population, the critical path, parameters."""

from __future__ import annotations

import pytest

from cmms.api.internal.duchy.v1 import computation_details_pb2
from cmms.bench.e2e import (
    PLAN_TOLERANCE,
    E2eBenchConfig,
    E2eBenchReport,
    E2eRun,
    E2eStage,
    Workload,
    _mark_critical_path,
    llv2_parameters,
    plan_workload,
    run_e2e_benchmark,
)
from cmms.bench.llv2 import LlBenchConfig, LlBenchReport, LlStageFigure


@pytest.mark.parametrize("registers", [60, 2_000])
def test_the_population_gives_about_n_registers(registers: int) -> None:
    workload = plan_workload(E2eBenchConfig(registers=registers))
    assert abs(workload.registers - registers) <= max(2, PLAN_TOLERANCE * registers)
    assert sum(workload.registers_per_edp.values()) == workload.registers
    assert len(workload.registers_per_edp) == 3
    # Distinct indexes never exceed the registers; with independent audiences few collide.
    assert 0.8 * workload.registers <= workload.distinct_indexes <= workload.registers
    assert workload.reach >= workload.distinct_indexes


def stage(duchy: str, name: str, start: float, seconds: float) -> E2eStage:
    return E2eStage(duchy, name, 1, start, seconds, None, None, None, None, None)


def test_parallel_branches_count_once_on_the_critical_path() -> None:
    stages = [
        stage("worker1", "SETUP_PHASE", 1.0, 2.0),  # ends at 3
        stage("worker2", "SETUP_PHASE", 1.5, 3.0),  # ends at 4.5: holds the aggregator up
        stage("aggregator", "SETUP_PHASE", 5.0, 1.0),
        stage("worker1", "EXECUTION_PHASE_ONE", 6.5, 1.0),
    ]
    marked = _mark_critical_path(stages)
    assert [s.on_critical_path for s in marked] == [False, True, True, True]
    assert _mark_critical_path([]) == []


def test_parameters_come_from_the_stored_details() -> None:
    details = computation_details_pb2.ComputationDetails()
    llv2 = details.liquid_legions_v2
    llv2.parameters.maximum_frequency = 7
    llv2.parameters.sketch_parameters.decay_rate = 5.6
    llv2.parameters.sketch_parameters.size = 1_000_000
    for _ in range(3):
        llv2.participants.add()
    parameters = llv2_parameters(details.SerializeToString(), requisitions=3)
    assert parameters.max_frequency == 7
    assert parameters.decay_rate == 5.6
    assert parameters.max_size == 1_000_000
    assert parameters.duchies == 3
    assert parameters.requisitions == 3
    assert parameters.noise is None


@pytest.mark.parametrize(
    "config",
    [E2eBenchConfig(registers=10, protocol="hmss"), E2eBenchConfig(registers=10, max_frequency=1)],
)
def test_bad_configs_are_refused_before_anything_starts(config: E2eBenchConfig) -> None:
    with pytest.raises(ValueError):
        run_e2e_benchmark(config)


def test_the_breakdown_adds_up_and_puts_the_edps_in_their_gap() -> None:
    def timed(duchy: str, name: str, start: float, seconds: float, crypto: float) -> E2eStage:
        return E2eStage(duchy, name, 1, start, seconds, seconds, crypto, crypto, 0.1, 10)

    stages = _mark_critical_path(
        [
            timed("aggregator", "INITIALIZATION_PHASE", 1.0, 0.5, 0.0),  # ends 1.5
            timed("aggregator", "CONFIRMATION_PHASE", 6.0, 0.5, 0.0),  # EDPs done at 5.0
            timed("aggregator", "SETUP_PHASE", 7.0, 2.0, 1.5),
        ]
    )
    run = E2eRun(10.0, 5.5, 5.0, stages, None, 1, {}, "c")
    report = E2eBenchReport(E2eBenchConfig(registers=1), Workload(1, 1, {}, 1, 1), run, None)
    breakdown = report.breakdown()
    assert breakdown["before_first_stage_s"] == 1.0
    assert breakdown["stages_s"] == 3.0
    assert breakdown["stage_crypto_s"] == 1.5
    assert breakdown["edp_fulfilment_s"] == pytest.approx(3.5)  # 1.5 .. 5.0
    assert breakdown["gaps_between_stages_s"] == pytest.approx(1.5)  # 5.0 .. 6.0, 6.5 .. 7.0
    assert breakdown["after_last_stage_s"] == 1.0
    parts = ("before_first_stage_s", "stages_s", "edp_fulfilment_s", "gaps_between_stages_s")
    assert sum(breakdown[k] for k in parts) + breakdown["after_last_stage_s"] == 10.0
    assert report.ratio is None  # no crypto-only run
    assert report.ratio_without_edps is None
    assert report.ratio_to_own_crypto == pytest.approx(10.0 / 1.5)


def test_ratios_against_the_crypto_only_run() -> None:
    stages = _mark_critical_path(
        [
            E2eStage("aggregator", "INITIALIZATION_PHASE", 1, 1.0, 0.5, None, 0.0, 0.0, None, None),
            E2eStage("aggregator", "SETUP_PHASE", 1, 6.0, 3.0, None, 2.0, 2.0, None, None),
        ]
    )
    run = E2eRun(10.0, None, 4.0, stages, None, 1, {}, "c")
    figure = LlStageFigure("setup-a", "AGGREGATOR", 4.0, 0, 0, 0, 0, 0, {}, 0.0, {}, 1.0)
    crypto = LlBenchReport("llv2", LlBenchConfig(registers=1), {}, [figure])
    report = E2eBenchReport(E2eBenchConfig(registers=1), Workload(1, 1, {}, 1, 1), run, crypto)
    assert report.breakdown()["edp_fulfilment_s"] == pytest.approx(2.5)  # 1.5 .. 4.0
    assert report.ratio == pytest.approx(10.0 / 4.0)
    assert report.ratio_without_edps == pytest.approx(7.5 / 4.0)
    assert report.ratio_to_own_crypto == pytest.approx(10.0 / 2.0)
    assert report.to_json()["target_met"] is False
