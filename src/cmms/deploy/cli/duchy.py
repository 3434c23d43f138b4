"""`cmms duchy`: Run a duchy's servers and daemons (internal API, computation control, herald, mills...)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

from cmms.common.errors import UserError
from cmms.deploy.cli._options import envvar
from cmms.deploy.cli._settings_options import settings_command
from cmms.duchy.cleaner import CleanerSettings
from cmms.duchy.herald.settings import HeraldSettings
from cmms.duchy.scheduler.settings import MillSchedulerSettings
from cmms.duchy.settings import (
    AsyncComputationControlSettings,
    ComputationControlSettings,
    InternalApiSettings,
    RequisitionFulfillmentSettings,
)

if TYPE_CHECKING:
    from cmms.duchy.deployable import DuchyDeployable

app = typer.Typer(
    name="duchy",
    help="Run a duchy's servers and daemons (internal API, computation control, herald, mills...).",
    no_args_is_help=True,
)

db_app = typer.Typer(
    name="db",
    help="Manage the duchy's computations database.",
    no_args_is_help=True,
)
app.add_typer(db_app)


@db_app.command("migrate")
def db_migrate(
    database_url: Annotated[
        str,
        typer.Option(
            "--database-url",
            envvar=envvar("database_url"),
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
    """Create or upgrade the duchy database schema (safe to run at every start)."""
    # Imported here so that `cmms --help` does not load SQLAlchemy and alembic.
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from cmms.duchy.db import migrate

    try:
        migrate.upgrade(database_url, revision)
        reached = migrate.current_revision(database_url)
    except ArgumentError as error:
        raise UserError(f"invalid database URL: {error}") from error
    except SQLAlchemyError as error:
        raise UserError(f"database migration failed: {error}") from error
    typer.echo(f"duchy database at revision {reached}")


# ------------------------------------------------------------------------------------ servers
# Each server command reads its settings from flags or CMMS_* variables, serves until SIGTERM or
# SIGINT, then drains. Server modules are imported inside the commands to keep `cmms --help` fast.


def _serve(build: Callable[[], Awaitable[DuchyDeployable]]) -> None:
    from cmms.common.logging import configure_logging

    configure_logging()

    async def main() -> None:
        deployable = await build()
        await deployable.run(
            started=lambda ports: typer.echo(
                f"serving on gRPC port {ports.grpc} (health {ports.health}, http {ports.http})",
                err=True,
            )
        )

    asyncio.run(main())


def _internal_api(settings: InternalApiSettings) -> None:
    """Serve the duchy's internal API (Computations, ComputationStats, ContinuationTokens)."""
    from cmms.duchy.internal_api.server import build_internal_api

    _serve(lambda: build_internal_api(settings))


def _async_computation_control(settings: AsyncComputationControlSettings) -> None:
    from cmms.duchy.control.async_server import build_async_computation_control

    async def build() -> DuchyDeployable:
        return build_async_computation_control(settings)

    _serve(build)


def _computation_control(settings: ComputationControlSettings) -> None:
    from cmms.duchy.control.server import build_computation_control

    async def build() -> DuchyDeployable:
        return build_computation_control(settings)

    _serve(build)


def _requisition_fulfillment(settings: RequisitionFulfillmentSettings) -> None:
    from cmms.duchy.fulfillment.server import build_requisition_fulfillment

    async def build() -> DuchyDeployable:
        return build_requisition_fulfillment(settings)

    _serve(build)


settings_command(
    app,
    "internal-api",
    InternalApiSettings,
    "Serve the internal API (Computations, ComputationStats, ContinuationTokens) to this "
    "duchy's own components.",
)(_internal_api)
settings_command(
    app,
    "async-computation-control",
    AsyncComputationControlSettings,
    "Serve AsyncComputationControl (records peer inputs, advances computations) to this "
    "duchy's computation-control server.",
)(_async_computation_control)
settings_command(
    app,
    "computation-control",
    ComputationControlSettings,
    "Serve ComputationControl to peer duchies (stage inputs in, stage queries).",
)(_computation_control)
settings_command(
    app,
    "requisition-fulfillment",
    RequisitionFulfillmentSettings,
    "Serve RequisitionFulfillment to data providers (encrypted data uploads).",
)(_requisition_fulfillment)


# ------------------------------------------------------------------------------------ daemons


def _mill_scheduler(settings: MillSchedulerSettings) -> None:
    from cmms.common.logging import configure_logging
    from cmms.duchy.scheduler.kubernetes_launcher import KubernetesSetupError
    from cmms.duchy.scheduler.runner import run_mill_scheduler

    configure_logging()

    def started(http_port: int | None) -> None:
        where = f"; /healthz and /metrics on port {http_port}" if http_port is not None else ""
        typer.echo(f"mill scheduler running ({settings.launcher} launcher{where})", err=True)

    try:
        asyncio.run(run_mill_scheduler(settings, started=started))
    except KubernetesSetupError as error:
        raise UserError(str(error)) from error


def _cleaner(settings: CleanerSettings) -> None:
    from cmms.common.logging import configure_logging
    from cmms.duchy.cleaner import CleanerError, run_cleaner

    configure_logging()
    try:
        report = asyncio.run(run_cleaner(settings))
    except CleanerError as error:
        raise UserError(f"purging failed: {error}") from error
    if report.updated_before is None:
        typer.echo("cleaner is off (computations time to live is 0)")
        return
    verb = "would purge" if report.dry_run else "purged"
    for purge in report.purges:
        sample = f" (e.g. {', '.join(purge.sample)})" if purge.sample else ""
        typer.echo(f"{verb} {purge.count} {purge.protocol.name} computations{sample}")


settings_command(
    app,
    "mill-scheduler",
    MillSchedulerSettings,
    "Claim work per mill type and launch a mill job carrying each claim (child processes, or "
    "Kubernetes Jobs from PodTemplates); clean up finished jobs.",
)(_mill_scheduler)
settings_command(
    app,
    "cleaner",
    CleanerSettings,
    "Purge computations that finished more than the time to live ago, and their blobs, for "
    "every protocol (--dry-run only reports).",
)(_cleaner)


# ------------------------------------------------------------------------------------ herald


def _herald(settings: HeraldSettings) -> None:
    from cmms.common.logging import configure_logging
    from cmms.duchy.herald.runner import run_herald

    configure_logging()
    typer.echo(f"herald of {settings.duchy_name} following the Kingdom", err=True)
    asyncio.run(run_herald(settings))


settings_command(
    app,
    "herald",
    HeraldSettings,
    "Follow the Kingdom's computations and keep this duchy's local ones in step: create, "
    "record confirmation data, start, fail or cancel (stops gracefully on SIGTERM).",
)(_herald)
