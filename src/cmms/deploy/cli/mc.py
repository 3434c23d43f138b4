"""`cmms mc`: Measurement consumer tools: create measurements and read verified results."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cmms.common.errors import UserError

app = typer.Typer(
    name="mc",
    help="Measurement consumer tools: create measurements and read verified results.",
    no_args_is_help=True,
)

PROTOCOLS = ("any", "llv2", "ro-llv2", "hmss", "trustee", "direct")
TYPES = ("reach", "reach-and-frequency")


def _env(field: str) -> str:
    return "CMMS_MC_" + field.upper()


@app.command("measure")
def measure(
    endpoints: Annotated[
        Path,
        typer.Option(
            "--endpoints", envvar=_env("endpoints_file"), help="endpoints.json of the system."
        ),
    ],
    protocol: Annotated[
        str,
        typer.Option(
            "--protocol",
            envvar=_env("protocol"),
            help=f"Protocol the Kingdom must pick ({', '.join(PROTOCOLS)}); the measurement is "
            "cancelled if it picks another. direct uses one EDP.",
        ),
    ] = "any",
    measurement_type: Annotated[
        str, typer.Option("--type", envvar=_env("type"), help="reach or reach-and-frequency.")
    ] = "reach-and-frequency",
    measurement_consumer: Annotated[
        str | None,
        typer.Option(
            "--measurement-consumer",
            envvar=_env("measurement_consumer"),
            help="Consumer id (default: the first in the endpoints file).",
        ),
    ] = None,
    data_provider: Annotated[
        list[str] | None,
        typer.Option(
            "--data-provider",
            envvar=_env("data_providers"),
            help="dataProviders/{id} to include (repeatable; default: every EDP with a group).",
        ),
    ] = None,
    max_frequency: Annotated[
        int, typer.Option("--max-frequency", envvar=_env("max_frequency"))
    ] = 10,
    epsilon: Annotated[float, typer.Option("--epsilon", envvar=_env("epsilon"))] = 1.0,
    delta: Annotated[float, typer.Option("--delta", envvar=_env("delta"))] = 1e-15,
    sampling_start: Annotated[
        float, typer.Option("--sampling-start", envvar=_env("sampling_start"))
    ] = 0.0,
    sampling_width: Annotated[
        float, typer.Option("--sampling-width", envvar=_env("sampling_width"))
    ] = 1.0,
    request_id: Annotated[
        str | None,
        typer.Option("--request-id", envvar=_env("request_id"), help="Idempotency key."),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", envvar=_env("timeout_seconds"), help="Give up after seconds."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Create a measurement, wait for it, verify and print its result."""
    import grpc
    from rich.console import Console

    from cmms.clients.endpoints import Endpoints
    from cmms.clients.mc.client import MeasurementConsumerError
    from cmms.clients.mc.display import ProgressDisplay, outcome_document, outcome_table
    from cmms.clients.mc.measure import ExpectedProtocol
    from cmms.clients.mc.measure import measure as run_measurement
    from cmms.clients.mc.measurement import MeasurementKind, MeasurementParams, PrivacyBudget

    if protocol not in PROTOCOLS:
        raise UserError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if measurement_type not in TYPES:
        raise UserError(f"--type must be one of {', '.join(TYPES)}, got {measurement_type!r}")
    try:
        budget = PrivacyBudget(epsilon, delta)
        params = MeasurementParams(
            kind=MeasurementKind(measurement_type),
            reach_privacy=budget,
            frequency_privacy=budget,
            vid_sampling_start=sampling_start,
            vid_sampling_width=sampling_width,
            max_frequency=max_frequency,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    system = Endpoints.load(endpoints)
    # Progress goes to stderr so that --json output stays one clean document on stdout.
    progress_console = Console(stderr=True)
    with ProgressDisplay(progress_console) as progress:
        try:
            outcome = asyncio.run(
                run_measurement(
                    system,
                    params,
                    protocol=ExpectedProtocol(protocol),
                    measurement_consumer=measurement_consumer,
                    data_providers=data_provider,
                    request_id=request_id,
                    max_wait_seconds=timeout,
                    on_update=progress,
                )
            )
        except MeasurementConsumerError as exc:
            raise UserError(str(exc)) from exc
        except grpc.aio.AioRpcError as exc:
            raise UserError(f"Kingdom call failed: {exc.code().name}: {exc.details()}") from exc
    if as_json:
        sys.stdout.write(json.dumps(outcome_document(outcome), indent=2) + "\n")
    else:
        Console().print(outcome_table(outcome))
