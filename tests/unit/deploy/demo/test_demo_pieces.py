"""The demo's pieces without a system: stage times from logs, the report, the tables."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from cmms.clients.mc.measurement import MeasurementKind
from cmms.common.errors import UserError
from cmms.deploy.cli.demo import parse_protocols
from cmms.deploy.demo.display import results_table, stages_table
from cmms.deploy.demo.report import REPORT_PNG, report_document, write_chart, write_json
from cmms.deploy.demo.runner import DemoMeasurement, planned_measurements
from cmms.deploy.demo.stages import (
    computations_started_between,
    read_stage_events,
    stage_times,
)
from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.routing import LocalProtocol
from cmms.deploy.local.system import DATA_PROVIDERS
from cmms.deploy.local.truth import true_reach_and_frequency

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def line(computation: str, stage: str, event: str, seconds: float, attempt: int = 1) -> str:
    record = {
        "computation": computation,
        "stage": stage,
        "attempt": attempt,
        "event": event,
        "level": "info",
        "timestamp": (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
    }
    return json.dumps(record) + "\n"


def write_job(directory: Path, duchy: str, job: str, *lines: str) -> None:
    (directory / duchy).mkdir(parents=True, exist_ok=True)
    (directory / duchy / f"{job}.log").write_text("".join(lines))


def test_stage_times_come_from_the_mill_job_logs(tmp_path: Path) -> None:
    write_job(
        tmp_path,
        "worker1",
        "job-a",
        line("old", "SETUP_PHASE", "stage started", -50),
        line("old", "SETUP_PHASE", "stage done", -49),
        line("c1", "SETUP_PHASE", "stage started", 1),
        line("c1", "SETUP_PHASE", "stage done", 3.5),
        "mill processed 1 stage(s)\n",
    )
    write_job(
        tmp_path,
        "aggregator",
        "job-b",
        line("c1", "AGGREGATION_PHASE", "stage started", 4),
        '{"torn": \n',
        line("c1", "AGGREGATION_PHASE", "stage done", 4.25),
    )
    events = read_stage_events(tmp_path)
    computations = computations_started_between(events, T0, T0 + timedelta(seconds=10))
    assert computations == {"c1"}
    times, complete = stage_times(events, computations)
    assert complete
    assert [(t.duchy, t.stage, t.seconds) for t in times] == [
        ("worker1", "SETUP_PHASE", 2.5),
        ("aggregator", "AGGREGATION_PHASE", 0.25),
    ]


def test_an_unfinished_stage_is_reported_as_incomplete(tmp_path: Path) -> None:
    write_job(tmp_path, "worker2", "job", line("c2", "SHUFFLE_PHASE", "stage started", 1))
    events = read_stage_events(tmp_path)
    times, complete = stage_times(events, {"c2"})
    assert times == []
    assert not complete
    assert read_stage_events(tmp_path / "missing") == []


def plan() -> list[DemoMeasurement]:
    options = LocalOptions(workdir=Path("."), population_size=500)
    entries = planned_measurements(options, list(LocalProtocol))
    for entry in entries[:-1]:
        entry.status = "succeeded"
        entry.reach_estimate = entry.reach_truth + 3
        entry.duration_s = 12.3456
        if entry.frequency_truth is not None:
            entry.frequency_estimate = dict(entry.frequency_truth)
    entries[-1].status = "failed"
    entries[-1].error = "the Kingdom chose liquid_legions_v2"
    return entries


def test_the_plan_uses_the_truth_of_the_edps_population() -> None:
    options = LocalOptions(workdir=Path("."), population_size=500)
    truth = true_reach_and_frequency(options, DATA_PROVIDERS, 10)
    entries = {e.protocol: e for e in planned_measurements(options, list(LocalProtocol))}
    assert all(e.reach_truth == truth.reach for e in entries.values())
    assert entries[LocalProtocol.RO_LLV2].kind is MeasurementKind.REACH
    assert entries[LocalProtocol.RO_LLV2].frequency_truth is None
    assert entries[LocalProtocol.HMSS].frequency_truth == truth.relative_frequency


def test_report_document_has_the_promised_shape(tmp_path: Path) -> None:
    document = report_document(plan())
    llv2, ro_llv2, _hmss, trustee = document["measurements"]
    assert set(llv2) >= {"protocol", "type", "status", "reach", "frequency", "duration_s", "stages"}
    assert llv2["protocol"] == "llv2" and llv2["type"] == "reach-and-frequency"
    assert llv2["status"] == "succeeded"
    assert llv2["reach"]["estimate"] == llv2["reach"]["truth"] + 3
    assert set(llv2["frequency"]["estimate"]) == {str(f) for f in range(1, 11)}
    assert llv2["duration_s"] == 12.346
    assert ro_llv2["type"] == "reach" and ro_llv2["frequency"] is None
    assert trustee["status"] == "failed" and trustee["reach"]["estimate"] is None
    assert "liquid_legions_v2" in trustee["error"]
    path = write_json(plan(), tmp_path)
    assert json.loads(path.read_text()) == document


def test_chart_is_a_png(tmp_path: Path) -> None:
    path = write_chart(plan(), tmp_path)
    assert path == tmp_path / REPORT_PNG
    assert path.read_bytes().startswith(b"\x89PNG")


def test_tables_show_each_protocol() -> None:
    console = Console(width=120, record=True)
    console.print(results_table(plan()))
    console.print(stages_table(plan()))
    text = console.export_text()
    for protocol in LocalProtocol:
        assert protocol.value in text
    assert "failed" in text


def test_protocols_option() -> None:
    assert parse_protocols("hmss, llv2,hmss") == [LocalProtocol.HMSS, LocalProtocol.LLV2]
    with pytest.raises(UserError):
        parse_protocols("hmss,direct")
    with pytest.raises(UserError):
        parse_protocols(" , ")
