"""`cmms kingdom`: Run the Kingdom: public and system APIs for consumers, providers and duchies."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from cmms.common.errors import UserError
from cmms.deploy.cli._options import settings_kwargs

app = typer.Typer(
    name="kingdom",
    help="Run the Kingdom: public and system APIs for consumers, providers and duchies.",
    no_args_is_help=True,
)
db_app = typer.Typer(name="db", help="Manage the Kingdom's database.", no_args_is_help=True)
app.add_typer(db_app)


def _env(field: str) -> str:
    return "CMMS_KINGDOM_" + field.upper()


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar=_env("database_url"),
        help=(
            "sqlite:///PATH (default sqlite:///kingdom.db), postgresql://USER@HOST:PORT/DB or "
            "spanner://projects/P/instances/I/databases/D (migrated, and created if absent)."
        ),
    ),
]


@app.command("serve")
def serve(
    config_file: Annotated[
        Path | None,
        typer.Option("--config", envvar=_env("config_file"), help="Kingdom config (YAML or JSON)."),
    ] = None,
    database_url: DatabaseUrl = None,
    pki_dir: Annotated[
        Path | None,
        typer.Option(
            "--pki-dir",
            envvar=_env("pki_dir"),
            help="A `cmms certs generate` directory (kingdom TLS files, roots, trust config).",
        ),
    ] = None,
    tls_cert_file: Annotated[
        Path | None, typer.Option("--tls-cert", envvar=_env("tls_cert_file"))
    ] = None,
    tls_key_file: Annotated[
        Path | None, typer.Option("--tls-key", envvar=_env("tls_key_file"))
    ] = None,
    trusted_roots_file: Annotated[
        Path | None,
        typer.Option("--trusted-roots", envvar=_env("trusted_roots_file"), help="Root bundle PEM."),
    ] = None,
    trust_config_file: Annotated[
        Path | None,
        typer.Option(
            "--trust-config", envvar=_env("trust_config_file"), help="Root SKID -> principal JSON."
        ),
    ] = None,
    host: Annotated[str | None, typer.Option("--host", envvar=_env("host"))] = None,
    public_port: Annotated[
        int | None, typer.Option("--public-port", envvar=_env("public_port"))
    ] = None,
    system_port: Annotated[
        int | None, typer.Option("--system-port", envvar=_env("system_port"))
    ] = None,
    health_port: Annotated[
        int | None, typer.Option("--health-port", envvar=_env("health_port"))
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", envvar=_env("metrics_port"))
    ] = None,
) -> None:
    """Serve the public API and the system API over mutual TLS (until SIGTERM/SIGINT)."""
    from pydantic import ValidationError

    from cmms.kingdom.runner import run_kingdom
    from cmms.kingdom.settings import KingdomSettings

    try:
        settings = KingdomSettings(
            **settings_kwargs(
                config_file=config_file,
                database_url=database_url,
                pki_dir=pki_dir,
                tls_cert_file=tls_cert_file,
                tls_key_file=tls_key_file,
                trusted_roots_file=trusted_roots_file,
                trust_config_file=trust_config_file,
                host=host,
                public_port=public_port,
                system_port=system_port,
                health_port=health_port,
                metrics_port=metrics_port,
            )
        )
    except ValidationError as error:
        raise UserError(f"invalid Kingdom settings: {error}") from error

    def started(ports: object) -> None:
        typer.echo(f"kingdom serving: {ports}")

    asyncio.run(run_kingdom(settings, started=started))


@db_app.command("migrate")
def db_migrate(
    database_url: Annotated[
        str,
        typer.Option(
            "--database-url",
            envvar=_env("database_url"),
            help=(
                "sqlite:///PATH (default backend), postgresql://USER@HOST:PORT/DB or "
                "spanner://projects/P/instances/I/databases/D (created if absent)."
            ),
        ),
    ],
    revision: Annotated[
        str,
        typer.Option(
            help="Schema revision to migrate up to (default: the newest; Spanner: a number)."
        ),
    ] = "head",
) -> None:
    """Create or upgrade the Kingdom database schema (safe to run at every start)."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from cmms.kingdom.db import migrate

    try:
        migrate.upgrade(database_url, revision)
        reached = migrate.current_revision(database_url)
    except ArgumentError as error:
        raise UserError(f"invalid database URL: {error}") from error
    except SQLAlchemyError as error:
        raise UserError(f"database migration failed: {error}") from error
    typer.echo(f"kingdom database at revision {reached}")


@app.command("seed")
def seed(
    pki: Annotated[Path, typer.Option("--pki", help="A `cmms certs generate` output directory.")],
    config_file: Annotated[
        Path, typer.Option("--config", envvar=_env("config_file"), help="Kingdom config file.")
    ],
    database_url: Annotated[
        str,
        typer.Option("--database-url", envvar=_env("database_url")),
    ] = "sqlite:///kingdom.db",
) -> None:
    """Register every MC, EDP and duchy of the PKI with its certificates (idempotent)."""
    from cmms.common.pki import PkiLayout
    from cmms.kingdom.config import load_config
    from cmms.kingdom.db.repository import open_repositories
    from cmms.kingdom.seeding import SeedReport, seed_from_pki

    layout = PkiLayout(pki)
    if not layout.trust_config.is_file():
        raise UserError(f"{pki} has no trust_config.json: run `cmms certs generate` first")
    config = load_config(config_file)

    async def run() -> SeedReport:
        repositories = await open_repositories(database_url, config)
        try:
            return await seed_from_pki(repositories, layout)
        finally:
            await repositories.close()

    report = asyncio.run(run())
    for name in report.parties:
        typer.echo(f"registered {name}")
    for name in report.certificates:
        typer.echo(f"certificate {name}")


@app.command("example-config")
def example_config() -> None:
    """Print an example Kingdom config (the reference test deployment's values) as YAML."""
    import yaml

    from cmms.kingdom.config import example_config as build

    typer.echo(yaml.safe_dump(build().model_dump(mode="json"), sort_keys=False))
