"""Per-stage times of a computation, read from the mill jobs' JSON logs.

Every mill job logs `stage started` and `stage done` (with the computation's global id, the
stage name and an ISO timestamp) around each stage it runs; the local scheduler writes one log
file per job under `logs/mills/{duchy}/`. The consumer never learns the computation's id, but
the demo runs one measurement at a time: the computations whose stages started while a
measurement was running are that measurement's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

STARTED = "stage started"
DONE = "stage done"


@dataclass(frozen=True)
class StageEvent:
    duchy: str
    computation: str
    stage: str
    attempt: int
    event: str
    at: datetime


@dataclass(frozen=True)
class StageTime:
    duchy: str
    stage: str
    seconds: float
    started: datetime


def read_stage_events(mill_logs: Path) -> list[StageEvent]:
    """Every stage start and end in `mill_logs/{duchy}/*.log`; other lines are skipped."""
    events: list[StageEvent] = []
    if not mill_logs.is_dir():
        return events
    for duchy_dir in sorted(p for p in mill_logs.iterdir() if p.is_dir()):
        for log in sorted(duchy_dir.glob("*.log")):
            events += _events_of(duchy_dir.name, _lines(log))
    return events


def _lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8", errors="replace") as file:
            yield from file
    except OSError:
        return


def _events_of(duchy: str, lines: Iterable[str]) -> Iterator[StageEvent]:
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
            if record.get("event") not in (STARTED, DONE):
                continue
            yield StageEvent(
                duchy=duchy,
                computation=str(record["computation"]),
                stage=str(record["stage"]),
                attempt=int(record.get("attempt", 1)),
                event=record["event"],
                at=datetime.fromisoformat(record["timestamp"]),
            )
        except (ValueError, KeyError, TypeError):
            # A torn line (a job still writing) or another format: not a stage event.
            continue


def computations_started_between(
    events: Iterable[StageEvent], start: datetime, end: datetime
) -> set[str]:
    return {e.computation for e in events if e.event == STARTED and start <= e.at <= end}


def stage_times(
    events: Iterable[StageEvent], computations: set[str]
) -> tuple[list[StageTime], bool]:
    """Finished stage attempts of `computations`, by start time; and whether every started
    attempt has finished (a job may still be writing its last line)."""
    started: dict[tuple[str, str, str, int], datetime] = {}
    finished: dict[tuple[str, str, str, int], datetime] = {}
    for event in events:
        if event.computation not in computations:
            continue
        key = (event.duchy, event.computation, event.stage, event.attempt)
        (started if event.event == STARTED else finished)[key] = event.at
    times = [
        StageTime(key[0], key[2], (finished[key] - at).total_seconds(), at)
        for key, at in started.items()
        if key in finished
    ]
    times.sort(key=lambda t: (t.started, t.duchy))
    return times, set(started) <= set(finished)
