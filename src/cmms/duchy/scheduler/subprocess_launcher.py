"""Mill jobs as child processes of the scheduler: the default, for a duchy on one machine.

Each job runs `cmms duchy mill <claim flags> <extra args>` with the scheduler's environment plus
configured variables. Output goes to `{log_dir}/{job}.log` when a log directory is given (then the
history limits decide how many finished jobs' logs are kept), else to the scheduler's own output.

With a `standby_command`, the launcher starts one warm standby (`standby`) that has loaded the
mill and forks every job instead of starting a fresh interpreter for it. If the standby cannot
start a job, or exits, standbys are turned off and jobs start cold, as without one; jobs it had
started and whose end it can no longer report count as failed (exit code -1).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cmms.common.logging import get_logger
from cmms.duchy.scheduler.claims import MillClaim
from cmms.duchy.scheduler.launcher import HistoryLimits
from cmms.duchy.scheduler.mill_types import MillType
from cmms.duchy.scheduler.standby import StandbyEvent, StandbyOrder

_log = get_logger(__name__)
# How long a standby may take to fork a job before the job is started cold instead.
STANDBY_START_TIMEOUT_SECONDS = 30.0
# A job the standby started but whose end it can no longer tell (it exited first).
UNKNOWN_EXIT = -1


def default_mill_command() -> list[str]:
    """`cmms duchy mill`, preferring the `cmms` script installed beside this interpreter."""
    beside = Path(sys.executable).with_name("cmms")
    return [str(beside) if beside.is_file() else "cmms", "duchy", "mill"]


class _JobProcess(Protocol):
    """What the launcher needs of a job's process (an `asyncio` child or a forked job)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def send_signal(self, signum: int) -> None: ...

    def kill(self) -> None: ...


class _ForkedJob:
    """A job the standby forked; its end is what the standby reports."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def ended(self, returncode: int) -> None:
        if self.returncode is None:
            self.returncode = returncode
            self._ended.set_result(returncode)

    async def wait(self) -> int:
        return await asyncio.shield(self._ended)

    def send_signal(self, signum: int) -> None:
        # Only while it runs: once reaped, its pid may belong to someone else.
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Standby:
    """The standby process, its jobs, and the task reading its reports."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._starting: dict[str, asyncio.Future[_ForkedJob]] = {}
        self._jobs: dict[str, _ForkedJob] = {}
        self.reader = asyncio.create_task(self._read(process.stdout), name="standby-reports")

    @property
    def alive(self) -> bool:
        return not self.reader.done()

    async def start(self, order: StandbyOrder) -> _ForkedJob:
        started = asyncio.get_running_loop().create_future()
        self._starting[order.job] = started
        try:
            self._stdin.write(order.encode())
            await self._stdin.drain()
            return await asyncio.wait_for(
                asyncio.shield(started), timeout=STANDBY_START_TIMEOUT_SECONDS
            )
        finally:
            self._starting.pop(order.job, None)

    async def _read(self, reports: asyncio.StreamReader) -> None:
        try:
            while line := await reports.readline():
                try:
                    event = StandbyEvent.decode(line)
                except (ValueError, KeyError, TypeError):
                    _log.warning("unreadable standby report", line=line[:200])
                    continue
                self._on(event)
        finally:
            # The standby is gone: nobody will report on what it started.
            for job in self._jobs.values():
                job.ended(UNKNOWN_EXIT)
            for waiting in self._starting.values():
                if not waiting.done():
                    waiting.set_exception(ConnectionError("the standby exited"))

    def _on(self, event: StandbyEvent) -> None:
        if event.returncode is None:
            job = _ForkedJob(event.pid)
            self._jobs[event.job] = job
            waiting = self._starting.get(event.job)
            if waiting is not None and not waiting.done():
                waiting.set_result(job)
            return
        ended = self._jobs.pop(event.job, None)
        if ended is not None:
            ended.ended(event.returncode)

    async def close(self, grace_seconds: float) -> None:
        """No more jobs; wait for the standby to leave (it waits for its running jobs)."""
        self._stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout=grace_seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()
        await asyncio.gather(self.reader, return_exceptions=True)


@dataclass
class _Child:
    name: str
    mill_type: MillType
    process: _JobProcess
    log_file: Path | None
    sequence: int
    waiter: asyncio.Task[int] = field(init=False)

    def __post_init__(self) -> None:
        self.waiter = asyncio.create_task(self.process.wait(), name=f"wait-{self.name}")
        self.waiter.add_done_callback(self._exited)

    def _exited(self, waiter: asyncio.Task[int]) -> None:
        if not waiter.cancelled():
            _log.info("mill job exited", job=self.name, returncode=self.process.returncode)

    @property
    def finished(self) -> bool:
        return self.waiter.done()

    @property
    def succeeded(self) -> bool:
        return self.finished and self.process.returncode == 0


@dataclass(frozen=True)
class SubprocessSettings:
    command: Sequence[str] = field(default_factory=default_mill_command)
    extra_args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    log_dir: Path | None = None
    # How long stopped children get to drain before they are killed.
    stop_grace_seconds: float = 10.0
    # Starts a warm standby (`cmms.duchy.scheduler.standby`) that runs `cmms duchy mill` itself,
    # in place of `command`; None: every job starts its own interpreter.
    standby_command: Sequence[str] | None = None


def default_standby_command() -> list[str]:
    """The standby of this installation: `python -m cmms.deploy.cli.mill_standby`."""
    return [sys.executable, "-m", "cmms.deploy.cli.mill_standby"]


class SubprocessLauncher:
    """`JobLauncher` that runs each mill job as a child process."""

    def __init__(
        self, settings: SubprocessSettings | None = None, limits: HistoryLimits | None = None
    ) -> None:
        self._settings = settings or SubprocessSettings()
        self._limits = limits or HistoryLimits()
        self._children: dict[str, _Child] = {}
        self._started = 0
        self._standby: _Standby | None = None
        self._standbys_on = settings is not None and settings.standby_command is not None

    async def launch(self, mill_type: MillType, claim: MillClaim) -> None:
        if claim.mill_id in self._children:
            raise ValueError(f"a job named {claim.mill_id} already exists")
        args = [*claim.mill_args(), *self._settings.extra_args]
        log_file = self._log_file(claim.mill_id)
        if log_file is not None:
            log_file.touch()
        process: _JobProcess | None = await self._fork_from_standby(claim.mill_id, args, log_file)
        warm = process is not None
        if process is None:
            process = await self._start_cold(args, log_file)
        self._started += 1
        self._children[claim.mill_id] = _Child(
            claim.mill_id, mill_type, process, log_file, self._started
        )
        _log.info(
            "mill job started",
            job=claim.mill_id,
            pid=process.pid,
            computation=claim.global_computation_id,
            warm=warm,
        )

    async def _start_cold(
        self, args: list[str], log_file: Path | None
    ) -> asyncio.subprocess.Process:
        argv = [*self._settings.command, *args]
        env = {**os.environ, **self._settings.env}
        if log_file is None:
            return await asyncio.create_subprocess_exec(*argv, env=env)
        with log_file.open("ab") as output:
            return await asyncio.create_subprocess_exec(
                *argv, env=env, stdout=output, stderr=asyncio.subprocess.STDOUT
            )

    async def _fork_from_standby(
        self, job: str, args: list[str], log_file: Path | None
    ) -> _ForkedJob | None:
        """The job, forked by the standby; None if there is no standby (any more)."""
        await self._keep_standby()
        standby = self._standby
        if standby is None:
            return None
        order = StandbyOrder(job, tuple(args), str(log_file) if log_file is not None else None)
        try:
            return await standby.start(order)
        except (ConnectionError, TimeoutError) as error:
            self._standby_failed(f"cannot start a job: {error!r}")
            return None

    async def _keep_standby(self) -> None:
        """Start the standby if standbys are on and there is none yet."""
        if not self._standbys_on:
            return
        if self._standby is not None:
            if not self._standby.alive:
                self._standby_failed(f"exited with code {self._standby.process.returncode}")
            return
        command = self._settings.standby_command
        assert command is not None
        # Its own output goes where the scheduler's goes; its stdout carries its reports.
        process = await asyncio.create_subprocess_exec(
            *command,
            env={**os.environ, **self._settings.env},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._standby = _Standby(process)

    def _standby_failed(self, why: str) -> None:
        # Do not start one after another: jobs start cold from now on.
        self._standbys_on = False
        standby, self._standby = self._standby, None
        if standby is not None and standby.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                standby.process.kill()
        _log.warning("warm standby failed; mill jobs start cold from now on", reason=why)

    async def active_jobs(self, mill_type: MillType) -> list[str]:
        # Asked before every claim: start the standby early, so that it has loaded the mill
        # by the time there is a job for it.
        await self._keep_standby()
        return [c.name for c in self._of_type(mill_type) if not c.finished]

    async def wait(self, job: str) -> int:
        """Wait for a job's process to end; returns its exit code (negative: killed by a signal)."""
        return await asyncio.shield(self._children[job].waiter)

    async def finished_jobs(self, mill_type: MillType) -> dict[str, int]:
        """Exit codes of the remembered finished jobs of `mill_type`."""
        return {
            c.name: c.process.returncode
            for c in self._of_type(mill_type)
            if c.finished and c.process.returncode is not None
        }

    async def clean_up(self, mill_type: MillType) -> list[str]:
        finished = [c for c in self._of_type(mill_type) if c.finished]
        # Newest first: the order in which they were started (children have no completion time
        # the kernel tells us, and the start order is what an operator reads logs by).
        finished.sort(key=lambda c: c.sequence, reverse=True)
        succeeded = [c for c in finished if c.succeeded]
        failed = [c for c in finished if not c.succeeded]
        forgotten = succeeded[self._limits.successful :] + failed[self._limits.failed :]
        for child in forgotten:
            del self._children[child.name]
            if child.log_file is not None:
                child.log_file.unlink(missing_ok=True)
        return [c.name for c in forgotten]

    async def close(self) -> None:
        self._standbys_on = False
        running = [c for c in self._children.values() if not c.finished]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        if running:
            _, late = await asyncio.wait(
                [c.waiter for c in running], timeout=self._settings.stop_grace_seconds
            )
            for child in running:
                if child.waiter in late:
                    with contextlib.suppress(ProcessLookupError):
                        child.process.kill()
            await asyncio.gather(*(c.waiter for c in running), return_exceptions=True)
        standby, self._standby = self._standby, None
        if standby is not None:
            await standby.close(self._settings.stop_grace_seconds)

    def _of_type(self, mill_type: MillType) -> list[_Child]:
        return [c for c in self._children.values() if c.mill_type is mill_type]

    def _log_file(self, job: str) -> Path | None:
        if self._settings.log_dir is None:
            return None
        self._settings.log_dir.mkdir(parents=True, exist_ok=True)
        return self._settings.log_dir / f"{job}.log"
