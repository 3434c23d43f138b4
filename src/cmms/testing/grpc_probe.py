"""A raw-bytes probe service for exercising the gRPC plumbing without any .proto file.

Methods of `test.Probe` (requests and responses are bytes):
  WhoAmI       -> the caller's principal resource name
  DuchyOnly    -> b"ok" (the policy admits only duchies)
  Count        -> streams b"0" .. b"{n-1}" for request b"{n}"
  Concat       <- stream of chunks, -> their concatenation
  Fail         -> NOT_FOUND via `fail`
  Crash        -> an unexpected exception (UNKNOWN)
  Flaky        -> UNAVAILABLE on the first call with a given request, then b"ok"
  Wait         -> sets `entered`, waits for `release`, then b"done"
A second service, `test.Closed`, has method `Anything` and no rule in `PROBE_POLICY`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc

from cmms.common.grpc.authz import ANY_AUTHENTICATED, AuthorizationPolicy, allow
from cmms.common.grpc.server import ServiceBinding
from cmms.common.grpc.status import fail
from cmms.common.identity import PrincipalKind, current_principal

PROBE_SERVICE = "test.Probe"
CLOSED_SERVICE = "test.Closed"
PROBE_POLICY = AuthorizationPolicy(
    {PROBE_SERVICE: ANY_AUTHENTICATED, f"/{PROBE_SERVICE}/DuchyOnly": allow(PrincipalKind.DUCHY)}
)


@dataclass
class Probe:
    """State shared between the probe handlers and a test."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    attempts: Counter[bytes] = field(default_factory=Counter)

    async def who_am_i(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return current_principal().resource_name.encode()

    async def duchy_only(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b"ok"

    async def count(
        self, request: bytes, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        for i in range(int(request)):
            yield f"{i}".encode()

    async def concat(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> bytes:
        return b"".join([chunk async for chunk in requests])

    async def fail(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        fail(grpc.StatusCode.NOT_FOUND, f"no probe named {request.decode()!r}")

    async def crash(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise RuntimeError("probe crashed on purpose")

    async def flaky(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.attempts[request] += 1
        if self.attempts[request] == 1:
            fail(grpc.StatusCode.UNAVAILABLE, "first attempt always fails")
        return b"ok"

    async def wait(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.entered.set()
        await self.release.wait()
        return b"done"

    def bindings(self) -> list[ServiceBinding]:
        """`test.Probe` and `test.Closed`, with identity (raw bytes) serializers."""
        unary = grpc.unary_unary_rpc_method_handler
        probe = grpc.method_handlers_generic_handler(
            PROBE_SERVICE,
            {
                "WhoAmI": unary(self.who_am_i),
                "DuchyOnly": unary(self.duchy_only),
                "Count": grpc.unary_stream_rpc_method_handler(self.count),
                "Concat": grpc.stream_unary_rpc_method_handler(self.concat),
                "Fail": unary(self.fail),
                "Crash": unary(self.crash),
                "Flaky": unary(self.flaky),
                "Wait": unary(self.wait),
            },
        )
        closed = grpc.method_handlers_generic_handler(
            CLOSED_SERVICE, {"Anything": unary(self.duchy_only)}
        )
        return [
            ServiceBinding.for_generic_handler(probe),
            ServiceBinding.for_generic_handler(closed),
        ]
