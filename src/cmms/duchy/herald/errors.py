"""How the Herald classifies what goes wrong while handling one computation."""

from __future__ import annotations

import grpc

from cmms.common.grpc import StatusError

# Codes worth another try: the server was away, slow, or a concurrent writer won a version race.
TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
    }
)


class HeraldError(Exception):
    """A permanent problem with a computation: retrying cannot help, so it is failed."""


class NotReadyError(HeraldError):
    """The local computation has not caught up with the Kingdom yet (a mill is still moving it).

    Retried like a transient error; only when the retries run out does the computation fail.
    """


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, NotReadyError):
        return True
    return isinstance(error, StatusError) and error.code in TRANSIENT_CODES
