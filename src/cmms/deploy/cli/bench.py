"""`cmms bench`: Benchmarks that report speed as ratios against a calibration measured in the same run."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="bench",
    help="Benchmarks that report speed as ratios against a calibration measured in the same run.",
    no_args_is_help=True,
)
