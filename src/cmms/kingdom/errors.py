"""Kingdom errors: each carries the gRPC status the caller receives.

They subclass `StatusError`, so the shared server guard turns them into the call's status and
service code needs no translation layer.
"""

from __future__ import annotations

import grpc

from cmms.common.grpc.status import StatusError


class KingdomError(StatusError):
    """A request the Kingdom refuses; `code` says why, in gRPC terms."""


def not_found(message: str) -> KingdomError:
    return KingdomError(grpc.StatusCode.NOT_FOUND, message)


def invalid_argument(message: str) -> KingdomError:
    return KingdomError(grpc.StatusCode.INVALID_ARGUMENT, message)


def failed_precondition(message: str) -> KingdomError:
    return KingdomError(grpc.StatusCode.FAILED_PRECONDITION, message)


def permission_denied(message: str) -> KingdomError:
    return KingdomError(grpc.StatusCode.PERMISSION_DENIED, message)


def aborted(message: str) -> KingdomError:
    return KingdomError(grpc.StatusCode.ABORTED, message)


def already_exists(message: str) -> KingdomError:
    return KingdomError(grpc.StatusCode.ALREADY_EXISTS, message)


def unauthenticated(message: str) -> KingdomError:
    return KingdomError(grpc.StatusCode.UNAUTHENTICATED, message)
