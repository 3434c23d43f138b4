"""`cmms demo`: run a whole local system and one measurement per protocol."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from cmms.common.errors import UserError
from cmms.deploy.cli.local import parse_noise, report_failure
from cmms.deploy.local.options import DEFAULT_POPULATION_SIZE
from cmms.deploy.local.routing import LocalProtocol

Result = TypeVar("Result")

DEFAULT_PROTOCOLS = "llv2,ro-llv2,hmss,trustee"


def demo(
    protocols: Annotated[
        str,
        typer.Option(
            "--protocols",
            help="Comma-separated: llv2 (reach and frequency), ro-llv2 (reach), hmss and "
            "trustee (reach and frequency).",
        ),
    ] = DEFAULT_PROTOCOLS,
    population: Annotated[
        int, typer.Option("--population", help="VIDs in the synthetic population.")
    ] = DEFAULT_POPULATION_SIZE,
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir", help="Where the system and the report live (default: a new temp dir)."
        ),
    ] = None,
    noise: Annotated[
        str,
        typer.Option(
            "--noise", help="on|off: DP noise wherever the protocol allows (not Liquid Legions)."
        ),
    ] = "on",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document on stdout, nothing else.")
    ] = False,
) -> None:
    """Start a local system (Kingdom, 3 duchies, 3 EDPs), run one measurement per protocol, stop.

    Shows each estimate against the truth counted in the clear, and writes
    demo-report.json and demo-report.png to the workdir. Exits non-zero if any measurement failed.
    """
    from rich.console import Console

    from cmms.deploy.demo.display import LiveProgress, results_table, stages_table
    from cmms.deploy.demo.report import report_document, write_chart, write_json
    from cmms.deploy.demo.runner import run_demo
    from cmms.deploy.local.options import LocalOptions
    from cmms.deploy.local.supervisor import SupervisorError

    chosen = parse_protocols(protocols)
    directory = (workdir or Path(tempfile.mkdtemp(prefix="cmms-demo-"))).resolve()
    try:
        options = LocalOptions(
            workdir=directory, population_size=population, noise=parse_noise(noise)
        )
    except ValueError as error:
        raise UserError(str(error)) from error
    stderr = Console(stderr=True)
    try:
        with LiveProgress(stderr) as progress:
            plan = asyncio.run(_until_signal(run_demo(options, chosen, progress)))
    except SupervisorError as error:
        report_failure(error)
        raise typer.Exit(1) from None
    except asyncio.CancelledError:
        print("cmms demo: interrupted; the system was stopped", file=sys.stderr)
        raise typer.Exit(130) from None
    report = write_json(plan, directory)
    chart = write_chart(plan, directory)
    if as_json:
        sys.stdout.write(json.dumps(report_document(plan), indent=2) + "\n")
    else:
        stdout = Console()
        stdout.print(results_table(plan))
        stdout.print(stages_table(plan))
        stdout.print(f"report: {report}\nchart:  {chart}\nlogs:   {directory / 'logs'}")
    failed = [entry for entry in plan if not entry.succeeded]
    for entry in failed:
        print(f"cmms demo: {entry.protocol.value} failed: {entry.error}", file=sys.stderr)
    if failed:
        raise typer.Exit(1)


async def _until_signal(work: Coroutine[Any, Any, Result]) -> Result:
    """Run `work`; SIGINT or SIGTERM cancels it, so that the system it started is stopped."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def parse_protocols(text: str) -> list[LocalProtocol]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = [p.value for p in LocalProtocol]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise UserError(f"--protocols takes a comma-separated subset of {','.join(known)}")
    return [LocalProtocol(n) for n in dict.fromkeys(names)]
