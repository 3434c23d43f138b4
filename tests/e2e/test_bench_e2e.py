"""`cmms bench e2e --json` at a tiny N: the document's shape (not the speed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cmms.testing.processes import cmms, processes_mentioning

pytestmark = pytest.mark.e2e

REGISTERS = 60
TIMEOUT_SECONDS = 900
COMPUTING_STAGES = {
    "SETUP_PHASE",
    "EXECUTION_PHASE_ONE",
    "EXECUTION_PHASE_TWO",
    "EXECUTION_PHASE_THREE",
}


def test_bench_e2e_json_smoke(tmp_path: Path) -> None:
    workdir = tmp_path / "system"
    finished = subprocess.run(
        cmms(
            "bench",
            "e2e",
            "--protocol",
            "llv2",
            "--registers",
            str(REGISTERS),
            "--workdir",
            str(workdir),
            "--repeats",
            "2",
            "--json",
        ),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert finished.returncode == 0, finished.stderr
    assert processes_mentioning(str(workdir)) == []
    document = json.loads(finished.stdout)
    assert document["benchmark"] == "e2e"
    assert document["protocol"] == "llv2"
    assert document["config"]["registers"] == REGISTERS
    workload = document["workload"]
    assert abs(workload["registers"] - REGISTERS) <= 2
    assert sum(workload["registers_per_edp"].values()) == workload["registers"]

    e2e = document["e2e"]
    assert e2e["seconds"] > 0
    # Two measurements in one system (two computations); the faster one is reported.
    runs = e2e["runs"]
    assert len(runs) == 2
    assert len({r["computation"] for r in runs}) == 2
    assert e2e["seconds"] == min(r["seconds"] for r in runs)
    assert e2e["computation"] in {r["computation"] for r in runs}
    stages = e2e["stages"]
    # Every duchy ran every computing stage once, and the mill recorded its figures.
    ran = {(s["duchy"], s["stage"]) for s in stages}
    for duchy in ("aggregator", "worker1", "worker2"):
        assert {(duchy, name) for name in COMPUTING_STAGES} <= ran
    for s in stages:
        if s["stage"] in COMPUTING_STAGES:
            assert s["crypto_seconds"] is not None, s
            assert s["bench_stage"] is not None, s
            assert s["on_critical_path"] or s["stage"] == "SETUP_PHASE", s
    breakdown = e2e["breakdown"]
    assert set(breakdown) == {
        "before_first_stage_s",
        "stages_s",
        "stage_crypto_s",
        "stage_rpc_s",
        "stage_other_s",
        "edp_fulfilment_s",
        "gaps_between_stages_s",
        "after_last_stage_s",
    }
    # The parts of the critical path add up to the whole.
    parts = (
        "before_first_stage_s",
        "stages_s",
        "edp_fulfilment_s",
        "gaps_between_stages_s",
        "after_last_stage_s",
    )
    assert sum(breakdown[k] for k in parts) == pytest.approx(e2e["seconds"])
    assert e2e["result"]["reach"] > 0
    assert e2e["result"]["reach_truth"] == workload["reach"]

    crypto = document["crypto_only"]
    assert crypto["seconds"] > 0
    assert len(crypto["runs"]) == 2
    assert crypto["seconds"] == min(r["seconds"] for r in crypto["runs"])
    assert {"setup-a", "p1-a", "p2-a", "p3-a"} <= set(crypto["stages"])
    assert e2e["fulfilled_at_s"] > 0
    assert document["ratio"] == pytest.approx(e2e["seconds"] / crypto["seconds"])
    assert document["ratio_without_edps"] == pytest.approx(
        (e2e["seconds"] - breakdown["edp_fulfilment_s"]) / crypto["seconds"]
    )
    assert document["ratio_to_own_crypto"] == pytest.approx(
        e2e["seconds"] / breakdown["stage_crypto_s"]
    )
    assert document["target_ratio"] == 1.15
    assert document["target_met"] is (document["ratio"] <= 1.15)
