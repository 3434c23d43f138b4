"""`cmms bench protocol`: registry, report shape and results that match the plaintext truth."""

from __future__ import annotations

import json

import pytest

from cmms.bench.protocol import (
    ProtocolBenchConfig,
    format_report,
    protocol_benchmarks,
    run_protocol_benchmark,
)
from cmms.deploy.cli import main


def test_registry_names() -> None:
    assert {"hmss", "trustee"} <= set(protocol_benchmarks())
    with pytest.raises(KeyError, match="known: "):
        run_protocol_benchmark("nope", ProtocolBenchConfig(registers=10))


@pytest.mark.parametrize("reach_only", [False, True])
def test_hmss_in_process_noiseless(reach_only: bool) -> None:
    config = ProtocolBenchConfig(registers=500, noise=False, reach_only=reach_only, isolated=False)
    report = run_protocol_benchmark("hmss", config)
    names = [stage.name for stage in report.stages]
    assert names == [
        "edp-0",
        "edp-1",
        "edp-2",
        "setup-w1",
        "setup-w2",
        "shuffle-w1",
        "shuffle-w2",
        "aggregation",
    ]
    assert report.critical_path[:2] == ["setup-w1", "setup-w2"]
    assert report.critical_path[-1] == "aggregation"
    # The synthetic data is 40% non-empty per EDP, so a union of three covers about 78%.
    assert 300 < report.result["reach"] < 480
    document = report.to_json()
    assert document["critical_path"]["seconds"] == pytest.approx(report.critical_path_seconds)  # type: ignore[index]
    # The aggregator's input is 4 bytes per register (no noise): 2 x 500 x 4 plus framing.
    aggregation = report.stages[-1]
    assert 4000 <= aggregation.input_bytes <= 4100
    assert "critical path:" in format_report(report)


def test_trustee_in_process() -> None:
    report = run_protocol_benchmark(
        "trustee", ProtocolBenchConfig(registers=300, noise=False, isolated=False, repeats=2)
    )
    assert report.critical_path == ["computing"]
    assert set(report.result["frequency_distribution"]) == {str(k) for k in range(1, 11)}


def test_cli_smoke_json(capsys: pytest.CaptureFixture[str]) -> None:
    main(["bench", "protocol", "trustee", "--registers", "64", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert document["protocol"] == "trustee"
    assert document["stages"][0]["peak_rss_bytes"] > 0
    assert document["critical_path"]["stages"] == ["computing"]


def test_cli_unknown_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "protocol", "llv3", "--registers", "8"])
    assert exit_info.value.code != 0
    assert "unknown protocol" in capsys.readouterr().err
