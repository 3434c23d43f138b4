"""`cmms duchy`: Run a duchy's servers and daemons (internal API, computation control, herald, mills...)."""

from __future__ import annotations

from typing import Annotated

import typer

from cmms.common.errors import UserError
from cmms.deploy.cli._options import envvar

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
            help="sqlite:///PATH (default backend) or postgresql://USER@HOST:PORT/DB.",
        ),
    ],
    revision: Annotated[
        str, typer.Option(help="Schema revision to migrate up to (default: the newest).")
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
