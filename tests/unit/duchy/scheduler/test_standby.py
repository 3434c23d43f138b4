"""Warm standby mill jobs: the protocol, and `SubprocessLauncher` having a standby fork its jobs
(real processes; a tiny script stands in for the mill)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cmms.duchy.scheduler import MillClaim, MillType, SubprocessLauncher
from cmms.duchy.scheduler.standby import MILL_SUBCOMMAND, StandbyEvent, StandbyOrder
from cmms.duchy.scheduler.subprocess_launcher import (
    UNKNOWN_EXIT,
    SubprocessSettings,
    default_standby_command,
)
from cmms.protocols.stages import ProtocolType

# Announces its pid on the READY fifo once "loaded", then forks its jobs: each records what it
# runs (arguments, pid, parent, one variable), prints to what is then the job's log, waits at
# the GATE fifo if given, and fails for ids "fail-*".
FAKE_STANDBY = """
import json, os, sys
from cmms.duchy.scheduler.standby import serve_orders
with open(os.environ["READY"], "w") as ready:
    ready.write(str(os.getpid()))

def run(argv):
    job = next(a for a in argv if a.startswith("--mill-id=")).split("=", 1)[1]
    record = {"argv": list(argv), "pid": os.getpid(), "parent": os.getppid(),
              "duchy": os.environ.get("DUCHY")}
    with open(os.path.join(os.environ["OUT_DIR"], job + ".json"), "w") as out:
        json.dump(record, out)
    print("standby job says hello", flush=True)
    gate = os.environ.get("GATE")
    if gate and "gated" in job:
        open(gate).read()
    sys.exit(3 if "--claimed-computation-id=fail-" in " ".join(argv) else 0)

sys.exit(serve_orders(run))
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
    for fifo in ("ready", "gate"):
        if not (tmp_path / fifo).exists():
            os.mkfifo(tmp_path / fifo)
    settings = SubprocessSettings(
        command=[sys.executable, "-c", COLD_MILL],
        extra_args=["--parallelism=2"],
        env={
            "OUT_DIR": str(tmp_path),
            "READY": str(tmp_path / "ready"),
            "GATE": str(tmp_path / "gate"),
            "DUCHY": "worker1",
        },
        log_dir=tmp_path / "logs",
        stop_grace_seconds=30,
        standby_command=[sys.executable, "-c", standby],
    )
    return SubprocessLauncher(settings)


async def standby_pid(tmp_path: Path) -> int:
    """Wait until the standby has loaded (it opens the fifo's other end) and return its pid."""
    return int(await asyncio.to_thread((tmp_path / "ready").read_text))


async def open_gate(tmp_path: Path) -> None:
    def release() -> None:
        with (tmp_path / "gate").open("w") as writer:  # Blocks until the job opens its end.
            writer.write("go")

    await asyncio.to_thread(release)


def recorded(tmp_path: Path, job: str) -> dict[str, object]:
    document: dict[str, object] = json.loads((tmp_path / f"{job}.json").read_text())
    return document


def test_orders_and_events_round_trip() -> None:
    order = StandbyOrder("j", ("--mill-id=j", "--parallelism=2"), "/logs/j.log")
    assert StandbyOrder.decode(order.encode()) == order
    assert StandbyOrder.decode(StandbyOrder("j", ("a",)).encode()).log_file is None
    for bad in (b'{"job": "j", "args": "--mill-id=j"}', b'{"job": "", "args": []}'):
        with pytest.raises(ValueError):
            StandbyOrder.decode(bad)
    for event in (StandbyEvent("j", 42), StandbyEvent("j", 42, -15)):
        assert StandbyEvent.decode(event.encode()) == event
    with pytest.raises(ValueError):
        StandbyEvent.decode(b'{"job": "j", "pid": "42"}')


def test_the_default_standby_is_this_interpreter() -> None:
    assert default_standby_command() == [sys.executable, "-m", "cmms.deploy.cli.mill_standby"]
    assert MILL_SUBCOMMAND == ("duchy", "mill")


async def test_the_standby_forks_every_job(tmp_path: Path) -> None:
    runner = launcher(tmp_path)
    try:
        assert await runner.active_jobs(MillType.LLV2) == []  # starts the standby
        standby = await standby_pid(tmp_path)

        await runner.launch(MillType.LLV2, claim("worker1-llv2-mill-job-bcdfg"))
        assert await runner.wait("worker1-llv2-mill-job-bcdfg") == 0
        first = recorded(tmp_path, "worker1-llv2-mill-job-bcdfg")
        assert first["parent"] == standby  # forked by the standby, not a fresh interpreter
        assert first["duchy"] == "worker1"
        assert first["argv"] == [
            "duchy",
            "mill",
            "--mill-id=worker1-llv2-mill-job-bcdfg",
            "--claimed-computation-type=LIQUID_LEGIONS_V2",
            "--claimed-computation-id=computation-1",
            "--claimed-computation-version=5",
            "--parallelism=2",
        ]
        log = tmp_path / "logs" / "worker1-llv2-mill-job-bcdfg.log"
        assert log.read_text() == "standby job says hello\n"

        # The same standby forks the next job; a failing job is reported as such.
        await runner.launch(MillType.LLV2, claim("worker1-llv2-mill-job-ghjkm", "fail-1"))
        assert await runner.wait("worker1-llv2-mill-job-ghjkm") == 3
        second = recorded(tmp_path, "worker1-llv2-mill-job-ghjkm")
        assert second["parent"] == standby
        assert second["pid"] != first["pid"]
        assert await runner.finished_jobs(MillType.LLV2) == {
            "worker1-llv2-mill-job-bcdfg": 0,
            "worker1-llv2-mill-job-ghjkm": 3,
        }
    finally:
        await runner.close()
    # The standby left with the launcher.
    with pytest.raises(ProcessLookupError):
        os.kill(standby, 0)


async def test_close_stops_running_jobs_then_the_standby(tmp_path: Path) -> None:
    runner = launcher(tmp_path)
    try:
        await runner.active_jobs(MillType.LLV2)
        standby = await standby_pid(tmp_path)
        await runner.launch(MillType.LLV2, claim("worker1-llv2-mill-job-gated"))
        assert await runner.active_jobs(MillType.LLV2) == ["worker1-llv2-mill-job-gated"]
    finally:
        await runner.close()
    assert await runner.wait("worker1-llv2-mill-job-gated") == -signal.SIGTERM
    with pytest.raises(ProcessLookupError):
        os.kill(standby, 0)


async def test_a_standby_that_dies_turns_standbys_off(tmp_path: Path) -> None:
    runner = launcher(tmp_path)
    try:
        await runner.active_jobs(MillType.LLV2)
        standby = await standby_pid(tmp_path)
        await runner.launch(MillType.LLV2, claim("worker1-llv2-mill-job-gated"))
        os.kill(standby, signal.SIGKILL)
        # Nobody can tell how the job it had started ends: it counts as failed.
        assert await runner.wait("worker1-llv2-mill-job-gated") == UNKNOWN_EXIT
        await open_gate(tmp_path)  # let the orphaned job finish

        await runner.launch(MillType.LLV2, claim("worker1-llv2-mill-job-bcdfg"))
        assert await runner.wait("worker1-llv2-mill-job-bcdfg") == 0
        cold = recorded(tmp_path, "worker1-llv2-mill-job-bcdfg")
        assert cold["cold"] is True
        assert cold["argv"] == [
            "--mill-id=worker1-llv2-mill-job-bcdfg",
            "--claimed-computation-type=LIQUID_LEGIONS_V2",
            "--claimed-computation-id=computation-1",
            "--claimed-computation-version=5",
            "--parallelism=2",
        ]
    finally:
        await runner.close()


async def test_a_standby_that_cannot_start_means_cold_jobs(tmp_path: Path) -> None:
    runner = launcher(tmp_path, standby="import sys; sys.exit(5)")
    try:
        await runner.launch(MillType.LLV2, claim("worker1-llv2-mill-job-bcdfg"))
        assert await runner.wait("worker1-llv2-mill-job-bcdfg") == 0
        assert recorded(tmp_path, "worker1-llv2-mill-job-bcdfg")["cold"] is True
    finally:
        await runner.close()


def test_the_real_standby_runs_cmms_duchy_mill(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    order = StandbyOrder("job", ("--help",), str(log))
    finished = subprocess.run(
        default_standby_command(), input=order.encode(), capture_output=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    started, ended = (StandbyEvent.decode(line) for line in finished.stdout.splitlines())
    assert started == StandbyEvent("job", started.pid)
    assert ended == StandbyEvent("job", started.pid, 0)
    assert "--claimed-computation-id" in log.read_text()
    # Without orders it leaves quietly.
    idle = subprocess.run(default_standby_command(), input=b"", capture_output=True, timeout=120)
    assert idle.returncode == 0
    assert idle.stdout == b""
