"""How `cmms mc measure` shows progress and results: rich on a terminal, or one JSON document."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.status import Status
from rich.table import Table

from cmms.api.public.v1 import common_pb2, measurements_pb2
from cmms.clients.mc.measure import MeasureOutcome

Measurement = measurements_pb2.Measurement


class ProgressDisplay:
    """A spinner naming the measurement's current state; call it with each read."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status: Status | None = None
        self._last: int | None = None

    def __enter__(self) -> ProgressDisplay:
        self._status = self._console.status("creating measurement")
        self._status.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._status is not None:
            self._status.stop()

    def __call__(self, measurement: Measurement) -> None:
        if measurement.state == self._last:
            return
        self._last = measurement.state
        state = Measurement.State.Name(measurement.state)
        self._console.log(f"{measurement.name}: {state}")
        if self._status is not None:
            self._status.update(f"{measurement.name}: {state}")


def _methodology(methodology: Measurement.Result.Methodology) -> str:
    return methodology.WhichOneof("methodology") or "unspecified"


def outcome_document(outcome: MeasureOutcome) -> dict[str, Any]:
    """The result as plain JSON-able data."""
    measurement = outcome.measurement
    results = []
    for verified in outcome.results:
        result = verified.result
        entry: dict[str, Any] = {
            "signer": verified.signer,
            "certificate": verified.certificate,
            "reach": result.reach.value,
            "reach_methodology": _methodology(result.reach.methodology),
        }
        if result.reach.noise_mechanism:
            entry["noise_mechanism"] = common_pb2.NoiseMechanism.Name(result.reach.noise_mechanism)
        if result.HasField("frequency"):
            distribution = result.frequency.relative_frequency_distribution
            entry["relative_frequency"] = {str(f): distribution[f] for f in sorted(distribution)}
        results.append(entry)
    return {
        "measurement": measurement.name,
        "state": Measurement.State.Name(measurement.state),
        "protocol": measurement.protocol_config.WhichOneof("protocol"),
        "data_providers": [entry.key for entry in measurement.data_providers],
        "results": results,
    }


def outcome_table(outcome: MeasureOutcome) -> Table:
    """One row per result and frequency bucket."""
    document = outcome_document(outcome)
    table = Table(title=f"{document['measurement']} ({document['protocol']})")
    table.add_column("signed by")
    table.add_column("reach", justify="right")
    table.add_column("frequency", justify="right")
    table.add_column("share", justify="right")
    for result in document["results"]:
        frequencies = result.get("relative_frequency") or {"-": None}
        for index, (frequency, share) in enumerate(frequencies.items()):
            table.add_row(
                result["signer"] if index == 0 else "",
                str(result["reach"]) if index == 0 else "",
                frequency,
                "" if share is None else f"{share:.4f}",
            )
    return table
