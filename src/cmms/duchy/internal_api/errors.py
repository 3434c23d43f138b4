"""Repository errors -> gRPC statuses, with a `google.rpc.ErrorInfo` naming the reason.

Each `RepositoryError` names its status code; where it also names an `ErrorCode` reason the
reason travels in the rich status trailer (`grpc-status-details-bin`), so clients can tell, say,
a stale token from a lock-owner mismatch (both ABORTED) without parsing messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2  # type: ignore[import-untyped]
from sqlalchemy.exc import OperationalError

from cmms.common.grpc import StatusError
from cmms.duchy.db.errors import RepositoryError, StaleVersionError
from cmms.duchy.internal_api.convert import ConversionError
from cmms.storage import BlobStoreError

ERROR_DOMAIN = "cmms.api.internal.duchy.v1.ErrorCode"
STATUS_DETAILS_KEY = "grpc-status-details-bin"

Response = TypeVar("Response")


def status_for(error: RepositoryError, context: Any | None = None) -> StatusError:
    """The StatusError answering `error`; attaches its ErrorInfo to `context`'s trailer."""
    code = grpc.StatusCode[error.status]
    message = str(error) or type(error).__name__
    if error.reason is not None and context is not None:
        metadata = {}
        if isinstance(error, StaleVersionError):
            metadata = {
                "computation_id": str(error.computation_id),
                "version": str(error.version),
                "token_version": str(error.token_version),
            }
        info = any_pb2.Any()
        info.Pack(
            error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=metadata)
        )
        status = status_pb2.Status(code=code.value[0], message=message, details=[info])
        context.set_trailing_metadata(((STATUS_DETAILS_KEY, status.SerializeToString()),))
    return StatusError(code, message)


def error_reason(error: grpc.aio.AioRpcError) -> str | None:
    """The ErrorInfo reason a failed call carried, if any (client side)."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    return None


def translating_errors(
    method: Callable[..., Awaitable[Response]],
) -> Callable[..., Awaitable[Response]]:
    """Decorate a servicer method: repository and conversion errors become statuses."""

    @wraps(method)
    async def wrapper(self: Any, request: Any, context: Any) -> Response:
        try:
            return await method(self, request, context)
        except RepositoryError as error:
            raise status_for(error, context) from error
        except ConversionError as error:
            raise StatusError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error
        except (OperationalError, BlobStoreError) as error:
            # The database or the blob store is unreachable: callers retry UNAVAILABLE.
            raise StatusError(
                grpc.StatusCode.UNAVAILABLE, f"{type(error).__name__}: {error}"
            ) from error

    return wrapper
