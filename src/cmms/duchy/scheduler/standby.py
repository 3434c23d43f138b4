"""Warm standby for mill jobs: one interpreter that has loaded the mill forks every job.

Starting `cmms duchy mill` costs about a second of CPU before the stage begins (Python, gRPC,
numpy, the protocol engines), several seconds of wall time on a busy machine, and LLv2 has
eleven stages in a row on its critical path. With a standby, `SubprocessLauncher` starts one
such interpreter once; it loads the mill and then forks a child per job, which runs exactly what
`cmms duchy mill <args>` would run, with its output in the job's log file. A fork costs
milliseconds and shares the loaded modules.

The protocol is one JSON object per line:

- launcher to standby (the standby's stdin): a `StandbyOrder` (job name, arguments, log file);
- standby to launcher (the standby's stdout): a `StandbyEvent` when the job's process exists
  (`returncode` null) and another when it has ended (`returncode` as `subprocess` reports it:
  negative for a signal).

At the end of its stdin the standby takes no more orders and exits (status 0) once every job has
ended and been reported. SIGTERM is passed on to every running job, then the same. The standby
itself never starts threads or gRPC, so forking it is safe; its own output goes to its stderr.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

# What a job runs, as `cmms` arguments before the claim's own.
MILL_SUBCOMMAND = ("duchy", "mill")


@dataclass(frozen=True)
class StandbyOrder:
    """A job to fork: its name, the mill's arguments and where its output goes."""

    job: str
    args: tuple[str, ...]
    log_file: str | None = None

    def encode(self) -> bytes:
        document = {"job": self.job, "args": list(self.args), "log_file": self.log_file}
        return json.dumps(document).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> StandbyOrder:
        document = json.loads(line)
        job, args, log_file = document["job"], document["args"], document.get("log_file")
        if not isinstance(job, str) or not job:
            raise ValueError("a standby order needs a job name")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ValueError("a standby order's args must be a list of strings")
        if log_file is not None and not isinstance(log_file, str):
            raise ValueError("a standby order's log file must be a string")
        return cls(job, tuple(args), log_file)


@dataclass(frozen=True)
class StandbyEvent:
    """A job's process started (`returncode` None) or ended."""

    job: str
    pid: int
    returncode: int | None = None

    def encode(self) -> bytes:
        document = {"job": self.job, "pid": self.pid, "returncode": self.returncode}
        return json.dumps(document).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> StandbyEvent:
        document = json.loads(line)
        job, pid, returncode = document["job"], document["pid"], document.get("returncode")
        if not isinstance(job, str) or not isinstance(pid, int):
            raise ValueError(f"not a standby event: {line!r}")
        if returncode is not None and not isinstance(returncode, int):
            raise ValueError(f"not a standby event: {line!r}")
        return cls(job, pid, returncode)


Run = Callable[[Sequence[str]], object]


def serve_orders(run: Run, orders: int = 0, events: int = 1) -> int:
    """Fork a child running `run(cmms arguments)` for every order read from the file descriptor
    `orders`, report on `events`, and return 0 once the orders have ended and every child has."""
    report = os.fdopen(os.dup(events), "wb", buffering=0)
    # Stray output of the standby itself goes where its stderr goes, never into the events.
    os.dup2(2, events)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    own_fds = [orders, report.fileno(), wake_read, wake_write]
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, _ignore)
    jobs: dict[int, str] = {}
    stopping = False

    def on_term(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for pid in jobs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    pending = b""
    taking_orders = True
    while taking_orders or jobs:
        watched = [wake_read, orders] if taking_orders else [wake_read]
        readable, _, _ = select.select(watched, [], [])
        if wake_read in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_read, 512):
                    pass
        _reap(jobs, report)
        if stopping:
            taking_orders = False
        if not taking_orders or orders not in readable:
            continue
        chunk = os.read(orders, 65536)
        if not chunk:
            taking_orders = False
            continue
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if not line.strip():
                continue
            order = StandbyOrder.decode(line)
            # Until the child has its default SIGTERM back, a SIGTERM for it must wait: the
            # standby's handler, run in the child, would swallow it (and signal the siblings).
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            pid = os.fork()
            if pid == 0:
                _run_job(order, run, own_fds)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
            jobs[pid] = order.job
            report.write(StandbyEvent(order.job, pid).encode())
    return 0


def _ignore(signum: int, frame: Any) -> None:
    """SIGCHLD only needs to wake `select` (through the wake-up fd)."""


def _reap(jobs: dict[int, str], report: Any) -> None:
    while jobs:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        job = jobs.pop(pid, None)
        if job is not None:
            report.write(StandbyEvent(job, pid, os.waitstatus_to_exitcode(status)).encode())


def _run_job(order: StandbyOrder, run: Run, own_fds: Sequence[int]) -> NoReturn:
    """In the forked child: become the job, run it, and exit with its status."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        for fd in own_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        if order.log_file is not None:
            log = os.open(order.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
        run([*MILL_SUBCOMMAND, *order.args])
        code = 0
    except SystemExit as exit_:
        code = _exit_code(exit_.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        # What a normal interpreter exit would do: exit handlers, then flushed output.
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
