"""`cmms kingdom`: Run the Kingdom: public and system APIs for consumers, providers and duchies."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="kingdom",
    help="Run the Kingdom: public and system APIs for consumers, providers and duchies.",
    no_args_is_help=True,
)
