"""The supervisor with trivial child processes: start, health, early death, stop order, cleanup."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from cmms.deploy.local.supervisor import (
    ChildFailedError,
    ChildSpec,
    HealthTimeoutError,
    Supervisor,
    SupervisorError,
)

# A child that announces it is ready by creating a file, then waits for SIGTERM and records it.
SERVE = """
import pathlib, signal, sys, time
ready, record, name = sys.argv[1], sys.argv[2], sys.argv[3]
def stop(signum, frame):
    with open(record, "a") as f:
        f.write(name + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print("serving", name, flush=True)
pathlib.Path(ready).touch()
while True:
    time.sleep(3600)
"""

CRASH = """
import sys
print("loading config", flush=True)
print("fatal: the config names no aggregator", file=sys.stderr, flush=True)
sys.exit(3)
"""

STUBBORN = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pathlib.Path(sys.argv[1]).touch()
while True:
    time.sleep(3600)
"""

# Starts a grandchild in the same process group, writes its pid, and exits on SIGTERM alone.
PARENT = """
import pathlib, signal, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
pathlib.Path(sys.argv[1]).write_text(str(grandchild.pid))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(3600)
"""


@dataclass(frozen=True)
class FileProbe:
    path: Path

    @property
    def description(self) -> str:
        return f"file {self.path}"

    async def check(self) -> bool:
        return self.path.exists()


async def until(condition: Callable[[], bool], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def python(script: str, *args: object) -> list[str]:
    return [sys.executable, "-c", script, *map(str, args)]


def serving(tmp_path: Path, name: str) -> ChildSpec:
    ready = tmp_path / f"{name}.ready"
    return ChildSpec(
        name, python(SERVE, ready, tmp_path / "stopped.txt", name), probe=FileProbe(ready)
    )


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for its reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


async def test_children_start_become_healthy_and_stop_newest_wave_first(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path / "logs")
    async with supervisor:
        await supervisor.start([serving(tmp_path, "kingdom")])
        await supervisor.wait_healthy(timeout=60)
        await supervisor.start([serving(tmp_path, "duchy-a"), serving(tmp_path, "duchy-b")])
        await supervisor.start([serving(tmp_path, "edp")])
        await supervisor.wait_healthy(timeout=60)
        assert supervisor.failure() is None
        pids = [supervisor.pid(n) for n in supervisor.names()]
    stopped = (tmp_path / "stopped.txt").read_text().split()
    assert stopped[0] == "edp"
    assert sorted(stopped[1:3]) == ["duchy-a", "duchy-b"]
    assert stopped[3] == "kingdom"
    assert all(supervisor.returncode(n) == 0 for n in supervisor.names())
    assert all(gone(pid) for pid in pids)
    assert "serving kingdom" in (tmp_path / "logs" / "kingdom.log").read_text()


async def test_a_child_dying_early_is_named_with_its_last_log_lines(tmp_path: Path) -> None:
    async with Supervisor(tmp_path / "logs") as supervisor:
        await supervisor.start(
            [serving(tmp_path, "healthy"), ChildSpec("herald", python(CRASH), probe=None)]
        )
        with pytest.raises(ChildFailedError) as caught:
            # The crashed child can never pass; its death must end the wait, not the timeout.
            await supervisor.wait_healthy(timeout=600)
    error = caught.value
    assert error.name == "herald"
    assert error.returncode == 3
    assert error.log_file == tmp_path / "logs" / "herald.log"
    assert error.last_lines == ("loading config", "fatal: the config names no aggregator")
    assert "herald exited with code 3" in str(error)
    assert "the config names no aggregator" in str(error)


async def test_wait_for_failure_reports_the_child_that_exits(tmp_path: Path) -> None:
    async with Supervisor(tmp_path / "logs") as supervisor:
        await supervisor.start([serving(tmp_path, "server")])
        await supervisor.wait_healthy(timeout=60)
        os.kill(supervisor.pid("server"), signal.SIGKILL)
        failure = await supervisor.wait_for_failure()
    assert failure.name == "server"
    assert failure.returncode == -signal.SIGKILL
    assert "killed by signal SIGKILL" in str(failure)


async def test_work_is_cancelled_when_a_child_dies_and_returned_when_it_ends(
    tmp_path: Path,
) -> None:
    async with Supervisor(tmp_path / "logs") as supervisor:
        await supervisor.start([serving(tmp_path, "server")])
        await supervisor.wait_healthy(timeout=60)
        assert await supervisor.unless_a_child_fails(asyncio.sleep(0, "done")) == "done"

        forever = asyncio.Event()
        waiting = asyncio.ensure_future(supervisor.unless_a_child_fails(forever.wait()))
        os.kill(supervisor.pid("server"), signal.SIGKILL)
        with pytest.raises(ChildFailedError) as caught:
            await asyncio.wait_for(waiting, timeout=60)
    assert caught.value.name == "server"


async def test_a_child_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    ready = tmp_path / "stubborn.ready"
    async with Supervisor(tmp_path / "logs", stop_grace_seconds=0.5) as supervisor:
        await supervisor.start(
            [ChildSpec("stubborn", python(STUBBORN, ready), probe=FileProbe(ready))]
        )
        await supervisor.wait_healthy(timeout=60)
    assert supervisor.returncode("stubborn") == -signal.SIGKILL


async def test_what_a_child_leaves_behind_is_stopped_with_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    async with Supervisor(tmp_path / "logs") as supervisor:
        await supervisor.start(
            [ChildSpec("scheduler", python(PARENT, pid_file), probe=FileProbe(pid_file))]
        )
        await supervisor.wait_healthy(timeout=60)
        grandchild = int(pid_file.read_text())
        assert not gone(grandchild)
    # SIGKILL is delivered at once, but the orphan is reaped by init in its own time.
    await until(lambda: gone(grandchild), timeout=10)


async def test_a_probe_that_never_passes_times_out_naming_the_child(tmp_path: Path) -> None:
    never = tmp_path / "never"
    async with Supervisor(tmp_path / "logs") as supervisor:
        ready = tmp_path / "slow.ready"
        argv = python(SERVE, ready, tmp_path / "stopped.txt", "slow")
        await supervisor.start([ChildSpec("slow", argv, probe=FileProbe(never))])
        with pytest.raises(HealthTimeoutError) as caught:
            await supervisor.wait_healthy(timeout=0.3)
    assert caught.value.waiting == {"slow": f"file {never}"}
    assert "slow" in str(caught.value)


async def test_a_command_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    async with Supervisor(tmp_path / "logs") as supervisor:
        with pytest.raises(SupervisorError, match="cannot start ghost"):
            await supervisor.start([ChildSpec("ghost", [str(tmp_path / "no-such-program")])])


async def test_names_must_be_unique(tmp_path: Path) -> None:
    async with Supervisor(tmp_path / "logs") as supervisor:
        await supervisor.start([serving(tmp_path, "one")])
        with pytest.raises(ValueError, match="repeated"):
            await supervisor.start([serving(tmp_path, "one")])


async def test_a_child_stopped_on_purpose_is_no_failure_and_starts_again(tmp_path: Path) -> None:
    async with Supervisor(tmp_path / "logs") as supervisor:
        await supervisor.start([serving(tmp_path, "kingdom"), serving(tmp_path, "herald")])
        await supervisor.wait_healthy(timeout=60)
        first = supervisor.pid("kingdom")
        assert await supervisor.stop_child("kingdom") == 0
        assert gone(first)
        assert supervisor.failure() is None
        # Waiting on the others is not disturbed by the child that is away.
        await supervisor.wait_healthy(timeout=60)
        (tmp_path / "kingdom.ready").unlink()
        await supervisor.start_child("kingdom")
        await supervisor.wait_healthy(timeout=60, names=["kingdom"])
        assert supervisor.pid("kingdom") != first
        assert supervisor.failure() is None
        # Once started again it is watched again.
        os.kill(supervisor.pid("kingdom"), signal.SIGKILL)
        failure = await supervisor.wait_for_failure()
    assert failure.name == "kingdom"
    assert (tmp_path / "logs" / "kingdom.log").read_text().count("serving kingdom") == 2


async def test_a_child_can_be_crashed_on_purpose(tmp_path: Path) -> None:
    async with Supervisor(tmp_path / "logs") as supervisor:
        await supervisor.start([serving(tmp_path, "kingdom"), serving(tmp_path, "herald")])
        await supervisor.wait_healthy(timeout=60)
        assert await supervisor.stop_child("kingdom", kill=True) == -signal.SIGKILL
        # The crash is not reported; another child dying still is.
        os.kill(supervisor.pid("herald"), signal.SIGTERM)
        failure = await supervisor.wait_for_failure()
    assert failure.name == "herald"
    # It never ran its SIGTERM handler.
    assert (tmp_path / "stopped.txt").read_text().split() == ["herald"]


async def test_only_a_child_stopped_on_purpose_can_be_started_again(tmp_path: Path) -> None:
    async with Supervisor(tmp_path / "logs") as supervisor:
        await supervisor.start([serving(tmp_path, "kingdom")])
        await supervisor.wait_healthy(timeout=60)
        with pytest.raises(SupervisorError, match="not stopped with stop_child"):
            await supervisor.start_child("kingdom")
        await supervisor.stop_child("kingdom")
        with pytest.raises(SupervisorError, match="not running"):
            await supervisor.stop_child("kingdom")


async def test_descendants_are_what_a_child_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    async with Supervisor(tmp_path / "logs") as supervisor:
        await supervisor.start(
            [
                ChildSpec("scheduler", python(PARENT, pid_file), probe=FileProbe(pid_file)),
                serving(tmp_path, "lonely"),
            ]
        )
        await supervisor.wait_healthy(timeout=60)
        assert supervisor.descendants("scheduler") == [int(pid_file.read_text())]
        assert supervisor.descendants("lonely") == []
