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
        # Estimates sit within a few percent of the truth: plot the difference, not the heights.
        labels = [entry.protocol.value for entry in plan]
        positions = list(range(len(plan)))
        errors = [
            100 * (entry.reach_estimate - entry.reach_truth) / entry.reach_truth
            if entry.reach_estimate is not None and entry.reach_truth
            else 0.0
            for entry in plan
        ]
        colors = ["tab:blue" if entry.succeeded else "tab:red" for entry in plan]
        reach_axes.bar(positions, errors, color=colors)
        reach_axes.axhline(0, color="black", linewidth=1)
        for position, error, entry in zip(positions, errors, plan, strict=True):
            text = (
                f"{entry.reach_estimate} / {entry.reach_truth}"
                if entry.reach_estimate is not None
                else "failed"
            )
            reach_axes.annotate(
                text,
                (position, error),
                textcoords="offset points",
                xytext=(0, 4 if error >= 0 else -12),
                ha="center",
                fontsize=8,
            )
        reach_axes.set_xticks(positions, labels)
        reach_axes.set_ylabel("reach: estimate vs truth (%)")
        reach_axes.set_title("Reach: relative error (labels: estimate / truth)")
        bound = max([1.0, *(abs(e) for e in errors)]) * 1.3
        reach_axes.set_ylim(-bound, bound)

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
