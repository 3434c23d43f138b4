"""`SubprocessLauncher` with real child processes (a tiny Python script standing in for the mill)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from cmms.duchy.scheduler import HistoryLimits, MillClaim, MillType, SubprocessLauncher
from cmms.duchy.scheduler.subprocess_launcher import SubprocessSettings, default_mill_command
from cmms.protocols.stages import ProtocolType

# Records its arguments and one variable; waits at a FIFO "gate" if given; fails for ids "fail-*".
FAKE_MILL = """
import json, os, sys
args = sys.argv[1:]
with open(os.path.join(os.environ["OUT_DIR"], args[0].split("=", 1)[1] + ".json"), "w") as out:
    json.dump({"args": args, "duchy": os.environ.get("CMMS_DUCHY_NAME")}, out)
print("mill says hello")
gate = os.environ.get("GATE")
if gate:
    open(gate).read()
sys.exit(3 if "--claimed-computation-id=fail-" in " ".join(args) else 0)
"""


def claim(job: str, global_id: str = "computation-1") -> MillClaim:
    return MillClaim(job, ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE, global_id, 5)


def launcher(tmp_path: Path, limits: HistoryLimits | None = None, **env: str) -> SubprocessLauncher:
    settings = SubprocessSettings(
        command=[sys.executable, "-c", FAKE_MILL],
        extra_args=["--parallelism=2"],
        env={"OUT_DIR": str(tmp_path), "CMMS_DUCHY_NAME": "worker1", **env},
        log_dir=tmp_path / "logs",
        stop_grace_seconds=30,
    )
    return SubprocessLauncher(settings, limits)


async def open_gate(gate: Path) -> None:
    def release() -> None:
        with gate.open("w") as writer:  # Blocks until the child opens its end.
            writer.write("go")

    await asyncio.to_thread(release)


async def test_a_child_gets_the_claim_extra_args_and_environment(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    runner = launcher(tmp_path, GATE=str(gate))

    await runner.launch(MillType.HMSS, claim("worker1-hmss-mill-job-bcdfg"))
    # The child is held at the gate, so it is certainly still running.
    assert await runner.active_jobs(MillType.HMSS) == ["worker1-hmss-mill-job-bcdfg"]
    assert await runner.active_jobs(MillType.LLV2) == []
    await open_gate(gate)
    assert await runner.wait("worker1-hmss-mill-job-bcdfg") == 0

    recorded = json.loads((tmp_path / "worker1-hmss-mill-job-bcdfg.json").read_text())
    assert recorded["args"] == [
        "--mill-id=worker1-hmss-mill-job-bcdfg",
        "--claimed-computation-type=HONEST_MAJORITY_SHARE_SHUFFLE",
        "--claimed-computation-id=computation-1",
        "--claimed-computation-version=5",
        "--parallelism=2",
    ]
    assert recorded["duchy"] == "worker1"
    assert await runner.active_jobs(MillType.HMSS) == []
    log = tmp_path / "logs" / "worker1-hmss-mill-job-bcdfg.log"
    assert "mill says hello" in log.read_text()


async def test_finished_children_beyond_the_history_limits_are_forgotten(tmp_path: Path) -> None:
    runner = launcher(tmp_path, HistoryLimits(successful=1, failed=1))
    jobs = {"ok-1": "a", "fail-1": "fail-a", "ok-2": "b", "fail-2": "fail-b", "ok-3": "c"}
    for job, global_id in jobs.items():
        await runner.launch(MillType.LLV2, claim(job, global_id))
    for job in jobs:
        await runner.wait(job)
    assert await runner.finished_jobs(MillType.LLV2) == {
        "ok-1": 0,
        "fail-1": 3,
        "ok-2": 0,
        "fail-2": 3,
        "ok-3": 0,
    }

    forgotten = await runner.clean_up(MillType.LLV2)

    assert sorted(forgotten) == ["fail-1", "ok-1", "ok-2"]
    assert await runner.finished_jobs(MillType.LLV2) == {"fail-2": 3, "ok-3": 0}
    logs = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert logs == ["fail-2.log", "ok-3.log"]
    assert await runner.clean_up(MillType.LLV2) == []


async def test_running_children_are_not_cleaned_up(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    runner = launcher(tmp_path, HistoryLimits(successful=0, failed=0), GATE=str(gate))
    await runner.launch(MillType.TRUSTEE, claim("held"))

    assert await runner.clean_up(MillType.TRUSTEE) == []
    await open_gate(gate)
    await runner.wait("held")
    assert await runner.clean_up(MillType.TRUSTEE) == ["held"]


async def test_close_stops_running_children(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    runner = launcher(tmp_path, GATE=str(gate))
    await runner.launch(MillType.HMSS, claim("long-stage"))

    await runner.close()

    assert await runner.finished_jobs(MillType.HMSS) == {"long-stage": -signal.SIGTERM}


async def test_a_job_name_is_used_once(tmp_path: Path) -> None:
    runner = launcher(tmp_path)
    await runner.launch(MillType.HMSS, claim("same"))
    with pytest.raises(ValueError, match="already exists"):
        await runner.launch(MillType.HMSS, claim("same"))
    await runner.wait("same")


def test_the_default_command_is_cmms_duchy_mill() -> None:
    command = default_mill_command()
    assert Path(command[0]).name == "cmms" and command[1:] == ["duchy", "mill"]
