"""`cmms local`: Run a whole system (Kingdom, three duchies, three EDPs) on loopback."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="local",
    help="Run a whole system (Kingdom, three duchies, three EDPs) on loopback.",
    no_args_is_help=True,
)
