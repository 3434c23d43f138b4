"""Mill jobs as child processes of the scheduler: the default, for a duchy on one machine.

Each job runs `cmms duchy mill <claim flags> <extra args>` with the scheduler's environment plus
configured variables. Output goes to `{log_dir}/{job}.log` when a log directory is given (then the
history limits decide how many finished jobs' logs are kept), else to the scheduler's own output.

With a `standby_command`, the launcher keeps one warm standby ready (`standby`): a job is handed
to it instead of starting a fresh interpreter, and the next standby starts at once. A standby
that exits before it gets a job turns standbys off (jobs then start cold, as without one).
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

from cmms.common.logging import get_logger
from cmms.duchy.scheduler.claims import MillClaim
from cmms.duchy.scheduler.launcher import HistoryLimits
from cmms.duchy.scheduler.mill_types import MillType
from cmms.duchy.scheduler.standby import StandbyOrder

_log = get_logger(__name__)


def default_mill_command() -> list[str]:
    """`cmms duchy mill`, preferring the `cmms` script installed beside this interpreter."""
    beside = Path(sys.executable).with_name("cmms")
    return [str(beside) if beside.is_file() else "cmms", "duchy", "mill"]


@dataclass
class _Child:
    name: str
    mill_type: MillType
    process: asyncio.subprocess.Process
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
        self._standby: asyncio.subprocess.Process | None = None
        self._standbys_on = settings is not None and settings.standby_command is not None

    async def launch(self, mill_type: MillType, claim: MillClaim) -> None:
        if claim.mill_id in self._children:
            raise ValueError(f"a job named {claim.mill_id} already exists")
        args = [*claim.mill_args(), *self._settings.extra_args]
        log_file = self._log_file(claim.mill_id)
        if log_file is not None:
            log_file.touch()
        process = await self._hand_to_standby(args, log_file)
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
        await self._keep_standby()

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

    async def _hand_to_standby(
        self, args: list[str], log_file: Path | None
    ) -> asyncio.subprocess.Process | None:
        """The standby, now running the job; None if there is none (or it has just died)."""
        standby, self._standby = self._standby, None
        if standby is None or standby.stdin is None:
            return None
        if standby.returncode is not None:
            self._standby_died(standby)
            return None
        order = StandbyOrder(tuple(args), str(log_file) if log_file is not None else None)
        try:
            standby.stdin.write(order.encode())
            await standby.stdin.drain()
            standby.stdin.close()
        except (BrokenPipeError, ConnectionResetError):
            return None
        return standby

    async def _keep_standby(self) -> None:
        """Start a standby if standbys are on and none is waiting."""
        if not self._standbys_on:
            return
        standby = self._standby
        if standby is not None and standby.returncode is None:
            return
        if standby is not None:
            self._standby = None
            self._standby_died(standby)
            return
        command = self._settings.standby_command
        assert command is not None
        # Its own output (before it has a job) goes where the scheduler's goes.
        self._standby = await asyncio.create_subprocess_exec(
            *command, env={**os.environ, **self._settings.env}, stdin=asyncio.subprocess.PIPE
        )

    def _standby_died(self, standby: asyncio.subprocess.Process) -> None:
        # It never got a job: something is wrong with it; do not start one after another.
        self._standbys_on = False
        _log.warning(
            "warm standby exited before its job; mill jobs start cold from now on",
            returncode=standby.returncode,
        )

    async def active_jobs(self, mill_type: MillType) -> list[str]:
        # Asked before every claim: the moment to have a standby ready for the next job.
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
        standby, self._standby = self._standby, None
        if standby is not None:
            await self._stop_standby(standby)
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

    async def _stop_standby(self, standby: asyncio.subprocess.Process) -> None:
        # End of input is its signal to leave; it may still be loading, so SIGTERM it too.
        if standby.stdin is not None:
            standby.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            standby.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(standby.wait(), timeout=self._settings.stop_grace_seconds)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                standby.kill()
            await standby.wait()

    def _of_type(self, mill_type: MillType) -> list[_Child]:
        return [c for c in self._children.values() if c.mill_type is mill_type]

    def _log_file(self, job: str) -> Path | None:
        if self._settings.log_dir is None:
            return None
        self._settings.log_dir.mkdir(parents=True, exist_ok=True)
        return self._settings.log_dir / f"{job}.log"
