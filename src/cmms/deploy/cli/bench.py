"""`cmms bench`: Benchmarks that report speed as ratios against a calibration measured in the same run."""

from __future__ import annotations

import json
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
