"""`cmms mc`: Measurement consumer tools: create measurements and read verified results."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="mc",
    help="Measurement consumer tools: create measurements and read verified results.",
    no_args_is_help=True,
)
