"""`cmms duchy mill`: run mill work for one computation type (registered on `cmms duchy`)."""

from __future__ import annotations

import asyncio
import signal

import typer

from cmms.common.errors import UserError
from cmms.deploy.cli._settings_options import settings_command
from cmms.deploy.cli.duchy import app
from cmms.duchy.mill.settings import MillSettings


def _mill(settings: MillSettings) -> None:
    # Imported here so that `cmms --help` does not load the protocol engines.
    from cmms.common.logging import configure_logging
    from cmms.crypto.errors import CryptoError
    from cmms.duchy.mill.process import build_mill, run_mill

    configure_logging()

    async def main() -> int:
        try:
            mill = build_mill(settings)
        except (OSError, CryptoError) as error:
            raise UserError(f"cannot set up the mill: {error}") from error
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            return await run_mill(mill, stop)
        finally:
            await mill.close()

    processed = asyncio.run(main())
    typer.echo(f"mill processed {processed} stage(s)", err=True)


settings_command(
    app,
    "mill",
    MillSettings,
    "Run protocol stages: the computation the scheduler claimed (--claimed-computation-*), then "
    "more work of its type until none is left (--poll: until stopped).",
)(_mill)
