"""`cmms demo --json` end to end: one document on stdout, the report files, nothing left running."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cmms.deploy.local.options import LocalOptions
from cmms.deploy.local.system import DATA_PROVIDERS
from cmms.deploy.local.truth import true_reach_and_frequency
from cmms.testing.processes import cmms, processes_mentioning

pytestmark = pytest.mark.e2e

POPULATION = 1_500
DEMO_TIMEOUT_SECONDS = 900


def test_demo_json_reports_every_measurement_against_the_truth(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        cmms(
            "demo",
            "--json",
            "--noise=off",
            f"--population={POPULATION}",
            "--protocols=hmss,trustee,ro-llv2",
            f"--workdir={workdir}",
        ),
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # exactly one document, nothing else on stdout
    assert processes_mentioning(str(workdir)) == []

    truth = true_reach_and_frequency(
        LocalOptions(workdir=workdir, population_size=POPULATION), DATA_PROVIDERS, 10
    )
    hmss, trustee, ro_llv2 = document["measurements"]
    for entry, protocol in ((hmss, "hmss"), (trustee, "trustee")):
        assert entry["protocol"] == protocol
        assert entry["type"] == "reach-and-frequency"
        assert entry["status"] == "succeeded"
        # No noise, exact frequency vectors: the truth, exactly.
        assert entry["reach"] == {"estimate": truth.reach, "truth": truth.reach}
        estimate = entry["frequency"]["estimate"]
        for frequency, share in truth.relative_frequency.items():
            assert estimate[str(frequency)] == pytest.approx(share, abs=1e-9)
            assert entry["frequency"]["truth"][str(frequency)] == pytest.approx(share)
        assert entry["duration_s"] > 0
    assert {s["stage"] for s in trustee["stages"]} == {"INITIALIZED", "COMPUTING"}
    assert {s["duchy"] for s in hmss["stages"]} == {"aggregator", "worker1", "worker2"}
    assert "SHUFFLE_PHASE" in {s["stage"] for s in hmss["stages"]}

    assert ro_llv2["protocol"] == "ro-llv2" and ro_llv2["type"] == "reach"
    assert ro_llv2["status"] == "succeeded"
    assert ro_llv2["frequency"] is None
    assert ro_llv2["reach"]["estimate"] == pytest.approx(truth.reach, rel=0.1)
    assert all(s["seconds"] >= 0 for s in ro_llv2["stages"])

    assert json.loads((workdir / "demo-report.json").read_text()) == document
    assert (workdir / "demo-report.png").read_bytes().startswith(b"\x89PNG")
