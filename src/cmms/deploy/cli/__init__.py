"""The `cmms` command line: the only place that reads settings and wires components."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from typer.exceptions import TyperException

from cmms.common.errors import UserError
from cmms.deploy.cli import bench, certs, demo, duchy, edp, kingdom, local, mc
from cmms.deploy.cli import duchy_mill as _duchy_mill  # noqa: F401  (adds `cmms duchy mill`)

app = typer.Typer(
    name="cmms",
    help="halo-cmms: privacy-preserving reach and frequency measurement across publishers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(kingdom.app)
app.add_typer(duchy.app)
app.add_typer(edp.app)
app.add_typer(mc.app)
app.add_typer(certs.app)
app.add_typer(local.app)
app.command(name="demo")(demo.demo)
app.add_typer(bench.app)


def _fail(message: str, code: int) -> None:
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"cmms: error: {first_line}", file=sys.stderr)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: bad input prints one line on stderr and exits non-zero."""
    try:
        result = app(
            args=list(argv) if argv is not None else None, prog_name="cmms", standalone_mode=False
        )
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _fail("aborted", 130)
    except TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            # A bare command group: show its help, as the user evidently wants to know the options.
            exc.show()  # type: ignore[attr-defined]
            sys.exit(2)
        format_message = getattr(exc, "format_message", None)
        _fail(format_message() if format_message else str(exc), getattr(exc, "exit_code", 2))
    except UserError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    if isinstance(result, int) and result != 0:
        sys.exit(result)
