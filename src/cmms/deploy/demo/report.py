"""The demo's report: one JSON document (also what `--json` prints) and a PNG chart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cmms.deploy.demo.runner import DemoMeasurement

REPORT_JSON = "demo-report.json"
REPORT_PNG = "demo-report.png"


def report_document(plan: Sequence[DemoMeasurement]) -> dict[str, Any]:
    return {"measurements": [entry.document() for entry in plan]}


def write_json(plan: Sequence[DemoMeasurement], directory: Path) -> Path:
    path = directory / REPORT_JSON
    path.write_text(json.dumps(report_document(plan), indent=2) + "\n", encoding="utf-8")
    return path


def write_chart(plan: Sequence[DemoMeasurement], directory: Path) -> Path:
    """Reach estimates against the truth, and each frequency distribution against the truth."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (reach_axes, frequency_axes) = pyplot.subplots(1, 2, figsize=(12, 4.5))
    try:
        labels = [entry.protocol.value for entry in plan]
        estimates = [entry.reach_estimate or 0 for entry in plan]
        positions = range(len(plan))
        bars = reach_axes.bar(positions, estimates, color="tab:blue", label="estimate")
        for bar, entry in zip(bars, plan, strict=True):
            if not entry.succeeded:
                bar.set_color("tab:red")
        for position, entry in zip(positions, plan, strict=True):
            reach_axes.hlines(
                entry.reach_truth, position - 0.4, position + 0.4, colors="black", label=None
            )
        reach_axes.plot([], [], color="black", label="truth")
        reach_axes.set_xticks(list(positions), labels)
        reach_axes.set_ylabel("reach")
        reach_axes.set_title("Reach: estimate and truth")
        reach_axes.legend(loc="lower right")

        truth = next((e.frequency_truth for e in plan if e.frequency_truth is not None), None)
        if truth is not None:
            frequencies = sorted(truth)
            frequency_axes.bar(
                frequencies, [truth[f] for f in frequencies], color="lightgray", label="truth"
            )
            for entry in plan:
                if entry.frequency_estimate is not None:
                    estimate = entry.frequency_estimate
                    frequency_axes.plot(
                        frequencies,
                        [estimate.get(f, 0.0) for f in frequencies],
                        marker="o",
                        label=entry.protocol.value,
                    )
            frequency_axes.set_xticks(frequencies)
            frequency_axes.legend()
        frequency_axes.set_xlabel("frequency (last bucket: that many or more)")
        frequency_axes.set_ylabel("share of reach")
        frequency_axes.set_title("Frequency distribution: estimates and truth")
        figure.tight_layout()
        path = directory / REPORT_PNG
        figure.savefig(path, dpi=100)
    finally:
        pyplot.close(figure)
    return path
