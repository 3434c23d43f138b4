"""`cmms edp`: Event data provider tools: simulate a publisher that fulfils requisitions."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="edp",
    help="Event data provider tools: simulate a publisher that fulfils requisitions.",
    no_args_is_help=True,
)
