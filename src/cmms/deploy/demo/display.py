"""What the demo shows: live progress on stderr, then a table of estimates against the truth."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from cmms.clients.mc.measurement import MeasurementKind
from cmms.deploy.demo.runner import DemoMeasurement, DemoObserver


class LiveProgress(DemoObserver):
    """A spinner for the system's start and one line per measurement, with its state."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._system: TaskID | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> LiveProgress:
        self._progress.start()
        self._system = self._progress.add_task("starting the local system", total=None)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._system is not None:
            self._progress.update(self._system, description="system: stopped", total=1, completed=1)
        self._progress.stop()

    def system_progress(self, message: str) -> None:
        if self._system is not None:
            self._progress.update(self._system, description=f"system: {message}")

    def measurement_started(self, entry: DemoMeasurement) -> None:
        if self._system is not None:
            # Its clock stops here: the time shown is how long the system took to start.
            self._progress.update(self._system, description="system: started", total=1, completed=1)
        self._tasks[entry.protocol.value] = self._progress.add_task(
            _label(entry, "creating"), total=None
        )

    def measurement_state(self, entry: DemoMeasurement, state: str) -> None:
        task = self._tasks.get(entry.protocol.value)
        if task is not None:
            self._progress.update(task, description=_label(entry, state))

    def measurement_finished(self, entry: DemoMeasurement) -> None:
        task = self._tasks.get(entry.protocol.value)
        if task is None:
            return
        if entry.succeeded:
            outcome = f"succeeded: reach {entry.reach_estimate} (truth {entry.reach_truth})"
        else:
            outcome = f"[red]failed[/red]: {entry.error}"
        self._progress.update(task, description=_label(entry, outcome), total=1, completed=1)


def _label(entry: DemoMeasurement, state: str) -> str:
    return f"{entry.protocol.value:<8} {entry.kind.value:<20} {state}"


def results_table(plan: Sequence[DemoMeasurement]) -> Table:
    """Per protocol: reach estimate and truth, relative error, the largest error of a
    frequency bucket's share, and the measurement's wall-clock time."""
    table = Table(title="cmms demo: estimates against the truth")
    table.add_column("protocol")
    table.add_column("type")
    table.add_column("status")
    table.add_column("reach", justify="right")
    table.add_column("truth", justify="right")
    table.add_column("rel err", justify="right")
    table.add_column("max Δfreq", justify="right")
    table.add_column("secs", justify="right")
    for entry in plan:
        table.add_row(
            entry.protocol.value,
            "reach" if entry.kind is MeasurementKind.REACH else "R&F",
            "ok" if entry.succeeded else f"[red]{entry.status}[/red]",
            "-" if entry.reach_estimate is None else str(entry.reach_estimate),
            str(entry.reach_truth),
            "-" if entry.relative_error is None else f"{entry.relative_error:.2%}",
            _frequency_error(entry),
            f"{entry.duration_s:.1f}",
        )
    return table


def _frequency_error(entry: DemoMeasurement) -> str:
    if entry.frequency_estimate is None or entry.frequency_truth is None:
        return "-"
    worst = max(
        abs(entry.frequency_estimate.get(f, 0.0) - share)
        for f, share in entry.frequency_truth.items()
    )
    return f"{worst:.4f}"


def stages_table(plan: Sequence[DemoMeasurement]) -> Table:
    """Seconds per stage and duchy (from the mill jobs' logs)."""
    table = Table(title="time per stage (seconds, summed over attempts)")
    table.add_column("protocol")
    table.add_column("stage")
    table.add_column("duchy")
    table.add_column("seconds", justify="right")
    for entry in plan:
        totals: dict[tuple[str, str], float] = defaultdict(float)
        for stage in entry.stages:
            totals[(stage.stage, stage.duchy)] += stage.seconds
        for index, ((stage_name, duchy), seconds) in enumerate(totals.items()):
            table.add_row(
                entry.protocol.value if index == 0 else "", stage_name, duchy, f"{seconds:.2f}"
            )
    return table
