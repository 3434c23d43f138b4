"""`cmms duchy`: Run a duchy's servers and daemons (internal API, computation control, herald, mills...)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="duchy",
    help="Run a duchy's servers and daemons (internal API, computation control, herald, mills...).",
    no_args_is_help=True,
)
