"""How a stage failure is handled: retried later (transient), fatal to the computation
(permanent), or the end of this mill's work on it (lock lost).

gRPC failures are classified by their status code when they reach the runner; everything else
raised by protocol code (invalid data, crypto errors) is permanent.
"""

from __future__ import annotations

import grpc

from cmms.common.grpc import StatusError

# Codes another attempt may get past (duchy_internals §8.3, pitfall 12).
TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
    }
)


class MillError(Exception):
    """Base class of the errors a handler raises on purpose."""


class TransientError(MillError):
    """Retry the stage later (re-enqueued with a backoff delay)."""


class PermanentError(MillError):
    """The computation cannot succeed: fail it here and at the Kingdom."""


class LockLostError(MillError):
    """Another worker owns the computation now, or it moved on: stop without writing anything."""


def is_transient(error: BaseException) -> bool:
    """Whether `error` is worth another attempt of the stage."""
    if isinstance(error, TransientError):
        return True
    if isinstance(error, StatusError):
        return error.code in TRANSIENT_CODES
    return False


def describe(error: BaseException) -> str:
    """A one-line description for logs and the Kingdom (no secrets are ever put in errors)."""
    text = str(error) or type(error).__name__
    return f"{type(error).__name__}: {text}"
