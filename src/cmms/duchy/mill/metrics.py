"""Prometheus metrics of the mill (exported on the job's /metrics when it serves one)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_LABELS = ("protocol", "stage")
_STAGE_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200)

STAGE_SECONDS = Histogram(
    "cmms_mill_stage_duration_seconds",
    "Wall-clock time of a stage attempt",
    (*_LABELS, "outcome"),
    buckets=_STAGE_BUCKETS,
)
CRYPTO_SECONDS = Histogram(
    "cmms_mill_crypto_duration_seconds",
    "Wall-clock time spent in protocol stage functions",
    _LABELS,
    buckets=_STAGE_BUCKETS,
)
CRYPTO_CPU_SECONDS = Histogram(
    "cmms_mill_crypto_cpu_seconds",
    "CPU time of this process spent in protocol stage functions",
    _LABELS,
    buckets=_STAGE_BUCKETS,
)
PEER_BYTES = Counter(
    "cmms_mill_peer_bytes_sent_total", "Bytes of stage outputs sent to other duchies", _LABELS
)
PEER_SECONDS = Histogram(
    "cmms_mill_peer_send_duration_seconds",
    "Wall-clock time of sending a stage output to another duchy",
    _LABELS,
    buckets=_STAGE_BUCKETS,
)
ATTEMPTS = Counter(
    "cmms_mill_stage_attempts_total", "Stage attempts by outcome", (*_LABELS, "outcome")
)
