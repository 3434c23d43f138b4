"""Warm standby mill jobs: the order format, and `SubprocessLauncher` handing jobs to standbys
(real child processes; a tiny script stands in for the mill)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cmms.duchy.scheduler import MillClaim, MillType, SubprocessLauncher
from cmms.duchy.scheduler.standby import MILL_SUBCOMMAND, StandbyOrder, serve_one_order
from cmms.duchy.scheduler.subprocess_launcher import SubprocessSettings, default_standby_command
from cmms.protocols.stages import ProtocolType

# Announces its pid on the READY fifo once "loaded", then serves one order: records what it runs
# (the arguments, its pid, one variable) and prints to what is then the job's log.
FAKE_STANDBY = """
import json, os, sys
from cmms.duchy.scheduler.standby import serve_one_order
with open(os.environ["READY"], "w") as ready:
    ready.write(str(os.getpid()))

def run(argv):
    job = next(a for a in argv if a.startswith("--mill-id=")).split("=", 1)[1]
    with open(os.path.join(os.environ["OUT_DIR"], job + ".json"), "w") as out:
        json.dump({"argv": list(argv), "pid": os.getpid(), "duchy": os.environ.get("DUCHY")}, out)
    print("standby says hello", flush=True)
    sys.exit(3 if "--claimed-computation-id=fail-" in " ".join(argv) else 0)

sys.exit(serve_one_order(run))
"""
COLD_MILL = """
import json, os, sys
job = sys.argv[1].split("=", 1)[1]
with open(os.path.join(os.environ["OUT_DIR"], job + ".json"), "w") as out:
    json.dump({"argv": sys.argv[1:], "pid": os.getpid(), "cold": True}, out)
"""


def claim(job: str, global_id: str = "computation-1") -> MillClaim:
    return MillClaim(job, ProtocolType.LIQUID_LEGIONS_V2, global_id, 5)


def launcher(tmp_path: Path, standby: str = FAKE_STANDBY) -> SubprocessLauncher:
    ready = tmp_path / "ready"
    if not ready.exists():
        os.mkfifo(ready)
    settings = SubprocessSettings(
        command=[sys.executable, "-c", COLD_MILL],
        extra_args=["--parallelism=2"],
        env={"OUT_DIR": str(tmp_path), "READY": str(ready), "DUCHY": "worker1"},
        log_dir=tmp_path / "logs",
        stop_grace_seconds=30,
        standby_command=[sys.executable, "-c", standby],
    )
    return SubprocessLauncher(settings)


async def standby_pid(tmp_path: Path) -> int:
    """Wait until a standby has loaded (it opens the fifo's other end) and return its pid."""
    return int(await asyncio.to_thread((tmp_path / "ready").read_text))


def test_orders_round_trip() -> None:
    order = StandbyOrder(("--mill-id=j", "--parallelism=2"), "/logs/j.log")
    assert StandbyOrder.decode(order.encode()) == order
    assert StandbyOrder.decode(StandbyOrder(("a",)).encode()).log_file is None
    with pytest.raises(ValueError):
        StandbyOrder.decode(b'{"args": "--mill-id=j"}')
    with pytest.raises(ValueError):
        StandbyOrder.decode(b'{"args": [], "log_file": 3}')


def test_a_standby_without_an_order_runs_nothing() -> None:
    ran: list[object] = []
    assert serve_one_order(ran.append, io.BytesIO(b"")) == 0
    assert ran == []


def test_the_default_standby_is_this_interpreter() -> None:
    assert default_standby_command() == [sys.executable, "-m", "cmms.deploy.cli.mill_standby"]
    assert MILL_SUBCOMMAND == ("duchy", "mill")


async def test_a_job_goes_to_the_waiting_standby_and_the_next_one_starts(tmp_path: Path) -> None:
    runner = launcher(tmp_path)
    try:
        assert await runner.active_jobs(MillType.LLV2) == []  # starts the first standby
        first = await standby_pid(tmp_path)

        await runner.launch(MillType.LLV2, claim("worker1-llv2-mill-job-bcdfg"))
        second = await standby_pid(tmp_path)  # started at once for the next job
        assert second != first
        assert await runner.wait("worker1-llv2-mill-job-bcdfg") == 0

        recorded = json.loads((tmp_path / "worker1-llv2-mill-job-bcdfg.json").read_text())
        assert recorded["pid"] == first  # the job ran in the standby, not a fresh process
        assert recorded["duchy"] == "worker1"
        assert recorded["argv"] == [
            "duchy",
            "mill",
            "--mill-id=worker1-llv2-mill-job-bcdfg",
            "--claimed-computation-type=LIQUID_LEGIONS_V2",
            "--claimed-computation-id=computation-1",
            "--claimed-computation-version=5",
            "--parallelism=2",
        ]
        log = tmp_path / "logs" / "worker1-llv2-mill-job-bcdfg.log"
        assert "standby says hello" in log.read_text()

        # The second job goes to the second standby; a failing job is reported as such.
        await runner.launch(MillType.LLV2, claim("worker1-llv2-mill-job-ghjkm", "fail-1"))
        await standby_pid(tmp_path)
        assert await runner.wait("worker1-llv2-mill-job-ghjkm") == 3
        recorded = json.loads((tmp_path / "worker1-llv2-mill-job-ghjkm.json").read_text())
        assert recorded["pid"] == second
        assert await runner.finished_jobs(MillType.LLV2) == {
            "worker1-llv2-mill-job-bcdfg": 0,
            "worker1-llv2-mill-job-ghjkm": 3,
        }
    finally:
        await runner.close()
    # The third standby, still waiting, was stopped with the launcher.
    assert await runner.active_jobs(MillType.LLV2) == []


async def test_a_standby_that_dies_early_turns_standbys_off(tmp_path: Path) -> None:
    runner = launcher(tmp_path, standby="import sys; sys.exit(5)")
    try:
        await runner.active_jobs(MillType.LLV2)
        standby = runner._standby
        assert standby is not None
        assert await standby.wait() == 5
        await runner.launch(MillType.LLV2, claim("worker1-llv2-mill-job-bcdfg"))
        assert await runner.wait("worker1-llv2-mill-job-bcdfg") == 0
        recorded = json.loads((tmp_path / "worker1-llv2-mill-job-bcdfg.json").read_text())
        assert recorded["cold"] is True
        assert recorded["argv"][0] == "--mill-id=worker1-llv2-mill-job-bcdfg"
        # No new standby is started after one died without a job.
        await runner.active_jobs(MillType.LLV2)
        assert runner._standby is None
    finally:
        await runner.close()


def test_the_real_standby_runs_cmms_duchy_mill(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    order = StandbyOrder(("--help",), str(log))
    finished = subprocess.run(
        default_standby_command(), input=order.encode(), capture_output=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    assert "--claimed-computation-id" in log.read_text()
    assert finished.stdout == b""  # the job's output went to its log
    # Without an order it leaves quietly.
    idle = subprocess.run(default_standby_command(), input=b"", capture_output=True, timeout=120)
    assert idle.returncode == 0
