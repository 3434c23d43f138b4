"""`cmms certs`: Development PKI: root CAs, TLS and consent-signaling certificates, trust config."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="certs",
    help="Development PKI: root CAs, TLS and consent-signaling certificates, trust config.",
    no_args_is_help=True,
)
