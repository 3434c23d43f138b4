"""`cmms bench`: Benchmarks that report speed as ratios against a calibration measured in the same run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="bench",
    help="Benchmarks that report speed as ratios against a calibration measured in the same run.",
    no_args_is_help=True,
)


@app.command("crypto")
def crypto(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of a table.")
    ] = False,
    iterations: Annotated[
        int, typer.Option(min=1, help="Operations per timing (batch size).")
    ] = 500,
    repeats: Annotated[int, typer.Option(min=1, help="Timings per figure; the best is kept.")] = 15,
) -> None:
    """µs/op of the P-256 and ElGamal primitives, each also as a ratio to a bare cffi
    variable-base EC_POINT_mul loop measured in the same run."""
    from cmms.bench.crypto import format_table, run_crypto_bench

    report = run_crypto_bench(iterations=iterations, repeats=repeats)
    if json_output:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(format_table(report))


@app.command("protocol")
def protocol(
    name: Annotated[str, typer.Argument(metavar="PROTOCOL", help="hmss or trustee.")],
    registers: Annotated[
        int, typer.Option("--registers", min=1, help="Register count N of every EDP vector.")
    ],
    parallelism: Annotated[
        int, typer.Option(min=1, help="Stage processes run at once where the protocol allows it.")
    ] = 1,
    max_frequency: Annotated[int, typer.Option(min=1, help="Maximum frequency MF.")] = 10,
    edps: Annotated[int, typer.Option(min=1, help="Number of EDPs.")] = 3,
    ring_modulus: Annotated[int, typer.Option(min=2, help="HMSS ring modulus q.")] = 127,
    noise: Annotated[bool, typer.Option(help="Add DP noise (epsilon 1, delta 1e-9).")] = True,
    reach_only: Annotated[bool, typer.Option(help="Reach-only instead of R&F.")] = False,
    repeats: Annotated[
        int, typer.Option(min=1, help="Runs of every stage; the fastest time is reported.")
    ] = 1,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of a table.")
    ] = False,
) -> None:
    """Per-stage wall time and peak RSS of a whole in-process protocol run, and its critical path."""
    from cmms.bench.protocol import (
        ProtocolBenchConfig,
        format_report,
        protocol_benchmarks,
        run_protocol_benchmark,
    )
    from cmms.common.errors import UserError

    if name not in protocol_benchmarks():
        raise UserError(
            f"unknown protocol {name!r}; choose from {', '.join(protocol_benchmarks())}"
        )
    config = ProtocolBenchConfig(
        registers=registers,
        parallelism=parallelism,
        max_frequency=max_frequency,
        edps=edps,
        ring_modulus=ring_modulus,
        noise=noise,
        reach_only=reach_only,
        repeats=repeats,
    )
    try:
        report = run_protocol_benchmark(name, config)
    except ValueError as error:
        raise UserError(str(error)) from error
    if json_output:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(format_report(report))


@app.command("e2e")
def e2e(
    registers: Annotated[
        int,
        typer.Option(
            "--registers",
            min=1,
            help="Combined register vector size N: the EDPs' LLv2 sketches hold about N registers "
            "together (the population is sized to give that).",
        ),
    ],
    protocol: Annotated[str, typer.Option("--protocol", help="llv2.")] = "llv2",
    parallelism: Annotated[
        int,
        typer.Option(
            min=0, help="Worker processes of every mill job and crypto-only stage (0: one per CPU)."
        ),
    ] = 0,
    max_frequency: Annotated[int, typer.Option(min=2, help="Maximum frequency MF.")] = 10,
    workdir: Annotated[
        Path | None,
        typer.Option(
            "--workdir",
            help="Keep the local system's files (logs, databases) here; default: a "
            "temporary directory, removed afterwards.",
        ),
    ] = None,
    crypto: Annotated[
        bool, typer.Option(help="Also run the crypto-only benchmark and report the ratio.")
    ] = True,
    repeats: Annotated[
        int,
        typer.Option(
            min=1,
            help="Measurements (in one system) and crypto-only runs; the fastest of each is "
            "reported (a shared host's load varies).",
        ),
    ] = 1,
    warm_standby: Annotated[
        bool,
        typer.Option(
            help="Mill schedulers fork every stage's job from a loaded mill (as `cmms local up` "
            "does); --no-warm-standby: every stage starts a fresh interpreter."
        ),
    ] = True,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON document instead of a table.")
    ] = False,
) -> None:
    """End-to-end time of one measurement through a local system (processes, gRPC, storage,
    databases), per stage, and its ratio to `cmms bench protocol` at the same N, run after it."""
    import sys

    from cmms.bench.e2e import E2eBenchConfig, E2eError, format_e2e_report, run_e2e_benchmark
    from cmms.common.errors import UserError

    def progress(message: str) -> None:
        print(f"cmms bench e2e: {message}", file=sys.stderr, flush=True)

    config = E2eBenchConfig(
        registers=registers,
        protocol=protocol,
        parallelism=parallelism,
        max_frequency=max_frequency,
        workdir=workdir,
        crypto=crypto,
        warm_standby=warm_standby,
        repeats=repeats,
    )
    try:
        report = run_e2e_benchmark(config, report=progress)
    except ValueError as error:
        raise UserError(str(error)) from error
    except E2eError as error:
        raise UserError(f"the end-to-end run failed: {error}") from error
    if json_output:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        typer.echo(format_e2e_report(report))
