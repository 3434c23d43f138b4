"""`cmms local`: Run a whole system (Kingdom, three duchies, three EDPs) on loopback."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cmms.common.errors import UserError
from cmms.deploy.local.options import DEFAULT_POPULATION_SIZE

if TYPE_CHECKING:
    from cmms.deploy.local.options import LocalOptions
    from cmms.deploy.local.supervisor import SupervisorError

app = typer.Typer(
    name="local",
    help="Run a whole system (Kingdom, three duchies, three EDPs) on loopback.",
    no_args_is_help=True,
)

NOISE_CHOICES = ("on", "off")


def parse_noise(noise: str) -> bool:
    if noise not in NOISE_CHOICES:
        raise UserError(f"--noise must be on or off, got {noise!r}")
    return noise == "on"


@app.command("up")
def up(
    workdir: Annotated[
        Path,
        typer.Option(
            "--workdir",
            envvar="CMMS_LOCAL_WORKDIR",
            help="Directory for the PKI, configs, databases, blobs, logs and endpoints.json "
            "(created; reusable).",
        ),
    ],
    population: Annotated[
        int,
        typer.Option(
            "--population", envvar="CMMS_LOCAL_POPULATION", help="VIDs in the synthetic population."
        ),
    ] = DEFAULT_POPULATION_SIZE,
    population_seed: Annotated[
        int, typer.Option("--population-seed", envvar="CMMS_LOCAL_POPULATION_SEED")
    ] = 1,
    overlap: Annotated[
        float,
        typer.Option(
            "--overlap",
            envvar="CMMS_LOCAL_OVERLAP",
            help="Share of each EDP's audience drawn from the audience all EDPs share (0..1).",
        ),
    ] = 0.5,
    reach_fraction: Annotated[
        float,
        typer.Option(
            "--reach-fraction",
            envvar="CMMS_LOCAL_REACH_FRACTION",
            help="Share of the population each EDP reaches.",
        ),
    ] = 0.3,
    noise: Annotated[
        str,
        typer.Option(
            "--noise",
            envvar="CMMS_LOCAL_NOISE",
            help="on|off: DP noise of HMSS and TrusTee (LLv2's is part of the protocol).",
        ),
    ] = "on",
    database: Annotated[
        str,
        typer.Option(
            "--database",
            envvar="CMMS_LOCAL_DATABASE",
            help="sqlite (files under the workdir) or a postgresql://USER@HOST:PORT/BASE URL "
            "(databases BASE_kingdom, BASE_worker1, ... created when missing).",
        ),
    ] = "sqlite",
    duchy_database: Annotated[
        list[str] | None,
        typer.Option(
            "--duchy-database",
            metavar="DUCHY=URL",
            help="Give one duchy its own database instead (repeatable): a sqlite:///FILE, "
            "postgresql://... or spanner://projects/P/instances/I/databases/D URL (Spanner: "
            "created when missing; on the emulator, set SPANNER_EMULATOR_HOST, which every "
            "process inherits).",
        ),
    ] = None,
    blob_storage: Annotated[
        str | None,
        typer.Option(
            "--blob-storage",
            envvar="CMMS_LOCAL_BLOB_STORAGE",
            help="Base URL of the duchies' blob stores (file://, s3://, gs://); each duchy uses "
            "its own folder under it. Default: file://WORKDIR/blobs.",
        ),
    ] = None,
) -> None:
    """Start the system, write WORKDIR/endpoints.json, run until SIGINT/SIGTERM, then stop it.

    Protocols are routed by measurement consumer: mc1 gets LLv2 (reach and frequency) or
    reach-only LLv2 (reach), mc-hmss HMSS, mc-trustee TrusTee. Logs: WORKDIR/logs/.
    """
    from cmms.deploy.local.options import LocalOptions
    from cmms.deploy.local.storage import parse_duchy_databases

    try:
        options = LocalOptions(
            workdir=workdir.resolve(),
            population_size=population,
            population_seed=population_seed,
            overlap=overlap,
            reach_fraction=reach_fraction,
            noise=parse_noise(noise),
            database=database,
            duchy_databases=parse_duchy_databases(duchy_database or []),
            blob_storage=blob_storage,
        )
    except ValueError as error:
        raise UserError(str(error)) from error
    code = asyncio.run(_run_until_signal(options))
    if code:
        raise typer.Exit(code)


def _say(message: str) -> None:
    print(f"cmms local: {message}", file=sys.stderr, flush=True)


def report_failure(error: SupervisorError) -> None:
    """The whole story on stderr: which process, how it ended, and its last log lines."""
    print(f"cmms: error: {error}", file=sys.stderr, flush=True)


async def _run_until_signal(options: LocalOptions) -> int:
    from cmms.deploy.local.routing import LocalProtocol, measure_hint
    from cmms.deploy.local.supervisor import SupervisorError
    from cmms.deploy.local.system import LocalSystem

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    system = LocalSystem(options, report=_say)
    try:
        starting = asyncio.ensure_future(system.start())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            _say("interrupted while starting; stopping")
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return 130
        stopping.cancel()
        try:
            starting.result()
        except SupervisorError as error:
            report_failure(error)
            return 1
        endpoints_file = options.workdir / "endpoints.json"
        for protocol in LocalProtocol:
            _say(f"{protocol.value}: {measure_hint(str(endpoints_file), protocol)}")
        _say("running; press Ctrl-C to stop")
        died = asyncio.ensure_future(system.supervisor.wait_for_failure())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([died, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if died.done():
            report_failure(died.result())
            return 1
        died.cancel()
        _say("stopping")
        return 0
    finally:
        await system.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
