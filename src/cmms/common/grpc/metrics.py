"""Prometheus metrics of gRPC servers (process-wide, labelled by server name)."""

from __future__ import annotations

import grpc
from prometheus_client import Counter, Histogram

RPCS_HANDLED = Counter(
    "cmms_grpc_server_handled",
    "RPCs completed by a server, by method and status code.",
    ["server", "method", "code"],
)
RPC_LATENCY_SECONDS = Histogram(
    "cmms_grpc_server_handling_seconds",
    "Time from the start of an RPC to its status, by method.",
    ["server", "method"],
    # Stage transfers stream for minutes, so the buckets reach further than the default 10 s.
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)


def record_rpc(server: str, method: str, code: grpc.StatusCode, seconds: float) -> None:
    """Count one finished RPC and observe its latency."""
    RPCS_HANDLED.labels(server=server, method=method, code=code.name).inc()
    RPC_LATENCY_SECONDS.labels(server=server, method=method).observe(seconds)
