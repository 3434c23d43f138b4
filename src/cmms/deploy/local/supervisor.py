"""A supervisor of child processes: start them in waves, wait until healthy, stop them all.

Each child runs in its own session (process group), with stdin closed and stdout and stderr
appended to `{log_dir}/{name}.log`. Being in its own group keeps a terminal's Ctrl-C away from
the children, so that the supervisor alone decides the order of shutdown; it also lets the
supervisor end whatever a child left behind (a scheduler's mill jobs) with one `killpg`.

Any child that exits before `stop()` is a failure: `ChildFailedError` names it, its exit code and
the last lines of its log. `stop()` ends the waves newest first: SIGTERM to each child, a grace
period to drain, then SIGKILL to the child's whole process group.

Fault injection (the reliability tests) takes one child down on purpose with `stop_child` (SIGTERM
and the grace, or SIGKILL at once) and brings it back with `start_child`: the same command, so the
same ports. A child stopped on purpose is not a failure until it is started again.
`descendants` lists what a child started (a mill scheduler's mill jobs).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol, TypeVar

T = TypeVar("T")
DEFAULT_TAIL_LINES = 20
_PROBE_INTERVAL_SECONDS = 0.1


class HealthProbe(Protocol):
    """One readiness check of a child (a health port, a file...)."""

    @property
    def description(self) -> str: ...

    async def check(self) -> bool:
        """True once the child is ready; never raises for a child that is merely not up yet."""
        ...


@dataclass(frozen=True)
class ChildSpec:
    """How to run one child: its name (also its log file's), command and readiness probe.

    `env` is added to the supervisor's own environment. A child without a probe counts as ready
    as soon as it has been started (and while it keeps running).
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    probe: HealthProbe | None = None
    cwd: Path | None = None


class SupervisorError(Exception):
    """A child could not be started, died, or did not become healthy in time."""


class ChildFailedError(SupervisorError):
    """A child exited while it should have been running."""

    def __init__(self, name: str, returncode: int, log_file: Path, last_lines: Sequence[str]):
        self.name = name
        self.returncode = returncode
        self.log_file = log_file
        self.last_lines = tuple(last_lines)
        how = (
            f"was killed by signal {signal.Signals(-returncode).name}"
            if returncode < 0 and -returncode in signal.valid_signals()
            else f"exited with code {returncode}"
        )
        super().__init__(
            f"{name} {how}; last lines of {log_file}:\n" + _indent(self.last_lines or ["(empty)"])
        )


class HealthTimeoutError(SupervisorError):
    """Some children kept running but never became healthy."""

    def __init__(self, waiting: Mapping[str, str], timeout: float, tails: Mapping[str, Path]):
        self.waiting = dict(waiting)
        lines = [f"not healthy after {timeout:g}s:"]
        for name, description in waiting.items():
            lines.append(f"  {name} ({description}); log: {tails[name]}")
            lines += ["    " + line for line in tail_of(tails[name], 5)]
        super().__init__("\n".join(lines))


def _indent(lines: Iterable[str]) -> str:
    return "\n".join("    " + line for line in lines)


def tail_of(path: Path, lines: int = DEFAULT_TAIL_LINES) -> list[str]:
    """The last `lines` lines of a log file (empty if it cannot be read)."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            # Logs can be large; the end of the file is all that is wanted.
            file.seek(max(0, size - 64 * 1024))
            text = file.read().decode("utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


@dataclass
class _Child:
    spec: ChildSpec
    process: asyncio.subprocess.Process
    log_file: Path
    wave: int
    exited: asyncio.Task[int]
    healthy: bool = False
    # Stopped by `stop_child`: its exit is expected, not a failure.
    stopped_on_purpose: bool = False

    @property
    def running(self) -> bool:
        return not self.exited.done()


class Supervisor:
    """Starts children in waves, watches them, and stops them newest wave first.

    Use as an async context manager (or call `stop()` in a `finally`): every child is stopped on
    the way out, also when starting or waiting fails.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        stop_grace_seconds: float = 15.0,
        tail_lines: int = DEFAULT_TAIL_LINES,
    ) -> None:
        self._log_dir = log_dir
        self._grace = stop_grace_seconds
        self._tail_lines = tail_lines
        self._children: dict[str, _Child] = {}
        self._waves = 0
        self._stopping = False

    # ----------------------------------------------------------------------------- starting

    async def start(self, specs: Iterable[ChildSpec]) -> None:
        """Start one wave of children (without waiting for them to be healthy)."""
        if self._stopping:
            raise SupervisorError("the supervisor is stopping")
        specs = list(specs)
        for spec in specs:
            if spec.name in self._children or "/" in spec.name or not spec.name:
                raise ValueError(f"bad or repeated child name {spec.name!r}")
        self._log_dir.mkdir(parents=True, exist_ok=True)
        wave = self._waves
        self._waves += 1
        for spec in specs:
            await self._launch(spec, wave)

    async def _launch(self, spec: ChildSpec, wave: int) -> None:
        log_file = self._log_dir / f"{spec.name}.log"
        with log_file.open("ab") as output:
            process = await self._spawn(spec, output, log_file)
        exited = asyncio.create_task(process.wait(), name=f"child-{spec.name}")
        self._children[spec.name] = _Child(spec, process, log_file, wave, exited)

    async def _spawn(
        self, spec: ChildSpec, output: IO[bytes], log_file: Path
    ) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                *spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, **spec.env},
                cwd=spec.cwd,
                start_new_session=True,
            )
        except OSError as error:
            raise SupervisorError(
                f"cannot start {spec.name} ({spec.argv[0] if spec.argv else '?'}): {error}"
            ) from error

    async def wait_healthy(self, timeout: float, names: Iterable[str] | None = None) -> None:
        """Wait until every named child (default: all) passes its probe.

        Raises `ChildFailedError` as soon as any child has exited, `HealthTimeoutError` when the
        time is up.
        """
        chosen = [self._children[n] for n in names] if names is not None else self._watched()
        pending = [c for c in chosen if not c.healthy]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            self.raise_if_any_exited()
            results = await asyncio.gather(*(self._probe(c) for c in pending))
            for child, ok in zip(pending, results, strict=True):
                child.healthy = ok
            pending = [c for c, ok in zip(pending, results, strict=True) if not ok]
            self.raise_if_any_exited()
            if not pending:
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise HealthTimeoutError(
                    {c.spec.name: _describe(c.spec.probe) for c in pending},
                    timeout,
                    {c.spec.name: c.log_file for c in pending},
                )
            # Wake up early if a child dies, so that its failure is reported at once.
            await asyncio.wait(
                [c.exited for c in self._watched()],
                timeout=min(_PROBE_INTERVAL_SECONDS, remaining),
                return_when=asyncio.FIRST_COMPLETED,
            )

    @staticmethod
    async def _probe(child: _Child) -> bool:
        if child.spec.probe is None:
            return child.running
        try:
            return await child.spec.probe.check()
        except Exception:
            # A probe that errors is a child that is not ready yet; its death is caught apart.
            return False

    # ----------------------------------------------------------------------------- watching

    def children(self) -> list[_Child]:
        return list(self._children.values())

    def names(self) -> list[str]:
        return list(self._children)

    def log_file(self, name: str) -> Path:
        return self._children[name].log_file

    def pid(self, name: str) -> int:
        return self._children[name].process.pid

    def returncode(self, name: str) -> int | None:
        return self._children[name].process.returncode

    def _watched(self) -> list[_Child]:
        """The children expected to be running (all but those stopped on purpose)."""
        return [c for c in self._children.values() if not c.stopped_on_purpose]

    def failure(self) -> ChildFailedError | None:
        """The first child (in start order) that has exited, described; None if all run."""
        for child in self._watched():
            if child.exited.done():
                return self._failure_of(child)
        return None

    def raise_if_any_exited(self) -> None:
        failure = self.failure()
        if failure is not None:
            raise failure

    async def wait_for_failure(self) -> ChildFailedError:
        """Wait until some child exits; returns its description (never returns if none does)."""
        while True:
            failure = self.failure()
            if failure is not None:
                return failure
            waiters = [c.exited for c in self._watched()]
            if not waiters:
                await asyncio.Event().wait()
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)

    async def unless_a_child_fails(self, work: Awaitable[T]) -> T:
        """Await `work`, unless a child exits first: then cancel `work` and raise that child's
        `ChildFailedError`, so that a dead process is a failure and not a hang."""
        task = asyncio.ensure_future(work)
        died = asyncio.ensure_future(self.wait_for_failure())
        try:
            await asyncio.wait([task, died], return_when=asyncio.FIRST_COMPLETED)
        finally:
            died.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.cancelled() and died.done() and not died.cancelled():
            raise died.result()
        return task.result()

    def _failure_of(self, child: _Child) -> ChildFailedError:
        returncode = child.exited.result()
        return ChildFailedError(
            child.spec.name, returncode, child.log_file, tail_of(child.log_file, self._tail_lines)
        )

    def descendants(self, name: str, depth: int | None = None) -> list[int]:
        """Live processes a child started (its own children at `depth` 1), from /proc."""
        return process_descendants(self._children[name].process.pid, depth)

    # ----------------------------------------------------------------------------- faults

    async def stop_child(self, name: str, *, kill: bool = False) -> int:
        """Stop one running child on purpose; returns its exit code.

        `kill` sends SIGKILL to its process group at once (a crash); otherwise SIGTERM, the grace
        period, then SIGKILL. Until `start_child`, its absence is not a failure.
        """
        child = self._children[name]
        if not child.running:
            raise SupervisorError(f"{name} is not running")
        child.stopped_on_purpose = True
        if kill:
            _kill_group(child.process.pid)
        await self._stop_child(child)
        return child.exited.result()

    async def start_child(self, name: str) -> None:
        """Start again, with the same command, a child stopped with `stop_child`.

        Does not wait for it to be healthy: call `wait_healthy([name])`.
        """
        child = self._children[name]
        if self._stopping:
            raise SupervisorError("the supervisor is stopping")
        if not child.stopped_on_purpose:
            raise SupervisorError(f"{name} was not stopped with stop_child")
        await self._launch(child.spec, child.wave)

    # ----------------------------------------------------------------------------- stopping

    async def stop(self) -> None:
        """Stop every child, newest wave first; returns once all of them are gone."""
        self._stopping = True
        for wave in reversed(range(self._waves)):
            members = [c for c in self._children.values() if c.wave == wave]
            await asyncio.gather(*(self._stop_child(c) for c in members))

    async def _stop_child(self, child: _Child) -> None:
        if child.running:
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
            done, _ = await asyncio.wait([child.exited], timeout=self._grace)
            if not done:
                _kill_group(child.process.pid)
        await asyncio.gather(child.exited, return_exceptions=True)
        # Whatever the child started and left behind (its group outlives it) goes too.
        _kill_group(child.process.pid)

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def process_descendants(pid: int, depth: int | None = None) -> list[int]:
    """Live (non-zombie) processes below `pid`, down to `depth` levels (default: all), read
    from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    frontier = [pid]
    level = 0
    while frontier and (depth is None or level < depth):
        frontier = [c for parent in frontier for c in parents.get(parent, [])]
        found += frontier
        level += 1
    return sorted(found)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _describe(probe: HealthProbe | None) -> str:
    return probe.description if probe is not None else "running"
