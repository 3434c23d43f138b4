"""Wrapping every method handler: authenticate, authorise, log, measure.

`grpc.aio` interceptors see only the method name and metadata, never the TLS peer, so the
guard wraps each `RpcMethodHandler` at registration instead: the wrapped behaviour receives the
ServicerContext, whose auth context holds the client certificate. Services register through a
`GuardedRegistrar` standing in for the server, so no handler can be added unguarded.

Wrapped behaviours are coroutines; handlers may be coroutines or async generators.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from cmms.common.grpc.auth import resolve_caller
from cmms.common.grpc.authz import AuthorizationPolicy
from cmms.common.grpc.metrics import record_rpc
from cmms.common.grpc.status import StatusError
from cmms.common.identity import Principal, TrustConfig, acting_as
from cmms.common.logging import get_logger

Behaviour = Callable[[Any, grpc.aio.ServicerContext], Any]

_BEHAVIOUR_FIELDS = {
    (False, False): "unary_unary",
    (False, True): "unary_stream",
    (True, False): "stream_unary",
    (True, True): "stream_stream",
}


@dataclass(frozen=True)
class CallGuard:
    """Per-server policy applied around each call."""

    server_name: str
    trust: TrustConfig
    policy: AuthorizationPolicy
    logger: structlog.typing.FilteringBoundLogger

    @classmethod
    def create(cls, server_name: str, trust: TrustConfig, policy: AuthorizationPolicy) -> CallGuard:
        """A guard logging as `cmms.grpc.server` bound to `server_name`."""
        return cls(server_name, trust, policy, get_logger("cmms.grpc.server", server=server_name))

    def wrap(self, method: str, handler: Any) -> Any:
        """A copy of `handler` (an RpcMethodHandler) whose behaviour is guarded."""
        field = _BEHAVIOUR_FIELDS[
            (bool(handler.request_streaming), bool(handler.response_streaming))
        ]
        inner: Behaviour = getattr(handler, field)
        return handler._replace(**{field: self._guarded(method, inner, handler.response_streaming)})

    def _guarded(self, method: str, inner: Behaviour, streams_responses: bool) -> Behaviour:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            caller: Principal | None = None
            code = grpc.StatusCode.UNKNOWN
            try:
                caller = resolve_caller(context, self.trust)
                self.policy.check(method, caller)
                with acting_as(caller):
                    result = await _run(inner, request, context, streams_responses)
                code = _code_of(context, default=grpc.StatusCode.OK)
                return result
            except StatusError as error:
                code = error.code
                await context.abort(error.code, error.message)
            except grpc.aio.AbortError:
                code = _code_of(context, default=grpc.StatusCode.UNKNOWN)
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                self.logger.exception("rpc_failed", method=method, caller=_name(caller))
                raise
            finally:
                elapsed = time.perf_counter() - started
                record_rpc(self.server_name, method, code, elapsed)
                self.logger.info(
                    "rpc",
                    method=method,
                    code=code.name,
                    latency_ms=round(elapsed * 1000, 3),
                    caller=_name(caller),
                )

        return guarded


async def _run(
    inner: Behaviour, request: Any, context: grpc.aio.ServicerContext, streams_responses: bool
) -> Any:
    result = inner(request, context)
    if streams_responses and inspect.isasyncgen(result):
        async for response in result:
            await context.write(response)
        return None
    if inspect.isawaitable(result):
        return await result
    return result


def _code_of(context: grpc.aio.ServicerContext, *, default: grpc.StatusCode) -> grpc.StatusCode:
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else default


def _name(principal: Principal | None) -> str | None:
    return None if principal is None else principal.resource_name


class _GuardedGenericHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, inner: Any, guard: CallGuard) -> None:
        self._inner = inner
        self._guard = guard

    def service(self, handler_call_details: Any) -> Any:
        handler = self._inner.service(handler_call_details)
        return None if handler is None else self._guard.wrap(handler_call_details.method, handler)

    def service_name(self) -> str | None:
        service_name = getattr(self._inner, "service_name", None)
        return service_name() if callable(service_name) else None


class GuardedRegistrar:
    """Stands in for a `grpc.aio.Server` when registering services, guarding every handler.

    Accepts what generated `add_*Servicer_to_server` functions and
    `grpc.method_handlers_generic_handler` produce.
    """

    def __init__(self, server: grpc.aio.Server, guard: CallGuard) -> None:
        self._server = server
        self._guard = guard
        self.service_names: list[str] = []

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Iterable[Any]) -> None:
        """Register generic handlers, each method guarded."""
        wrapped = [_GuardedGenericHandler(h, self._guard) for h in generic_rpc_handlers]
        self.service_names += [n for n in (h.service_name() for h in wrapped) if n]
        self._server.add_generic_rpc_handlers(wrapped)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, Any]
    ) -> None:
        """Register pre-registered method handlers (generated code), each guarded."""
        guarded = {
            name: self._guard.wrap(f"/{service_name}/{name}", handler)
            for name, handler in method_handlers.items()
        }
        self._server.add_registered_method_handlers(service_name, guarded)
