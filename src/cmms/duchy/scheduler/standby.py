"""Warm standby mill jobs: an interpreter that has already loaded the mill waits for its claim.

Starting `cmms duchy mill` costs about a second of CPU before the stage begins (Python, gRPC,
numpy, the protocol engines), and on a busy machine several seconds of wall time. For a protocol
of many short stages on one machine (LLv2 has eleven stages on its critical path) that start-up
is a large part of the end-to-end time. With a standby, `SubprocessLauncher` keeps one such
interpreter started ahead of time; a claim is handed to it as one JSON line on its stdin
(`StandbyOrder`), and it then runs exactly what `cmms duchy mill <args>` would run, with its
output going to the job's log file. The launcher starts the next standby at once.

A standby whose stdin reaches end-of-file without an order exits with status 0.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

# What a standby runs, as `cmms` arguments before the claim's own.
MILL_SUBCOMMAND = ("duchy", "mill")


@dataclass(frozen=True)
class StandbyOrder:
    """The job a standby becomes: the mill's arguments and where its output goes."""

    args: tuple[str, ...]
    log_file: str | None = None

    def encode(self) -> bytes:
        return json.dumps({"args": list(self.args), "log_file": self.log_file}).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> StandbyOrder:
        document = json.loads(line)
        args = document["args"]
        log_file = document.get("log_file")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ValueError("a standby order's args must be a list of strings")
        if log_file is not None and not isinstance(log_file, str):
            raise ValueError("a standby order's log file must be a string")
        return cls(tuple(args), log_file)


def serve_one_order(run: Callable[[Sequence[str]], object], orders: BinaryIO | None = None) -> int:
    """Wait for one order on `orders` (default: stdin) and run `run(cmms arguments)`.

    Returns 0 without running anything when `orders` ends first. `run` may `sys.exit`.
    """
    source = orders if orders is not None else sys.stdin.buffer
    line = source.readline()
    if not line.strip():
        return 0
    order = StandbyOrder.decode(line)
    if order.log_file is not None:
        _redirect_output(order.log_file)
    # The job reads nothing from the launcher; stdin is done with.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    run([*MILL_SUBCOMMAND, *order.args])
    return 0


def _redirect_output(path: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
