"""Server bootstrap: mutual TLS, guarded handlers, health, metrics, reflection, graceful drain.

A component builds its server from servicers, an authorisation policy, ports and TLS files::

    server = SecureServer(
        ServerOptions(name="duchy-computation-control", port=8443, health_port=8080, http_port=9090),
        ServerTls.from_pki(layout, Principal.duchy("worker1")),
        [ServiceBinding.for_servicer(SERVICE_NAME, add_ComputationControlServicer_to_server, servicer)],
        AuthorizationPolicy({SERVICE_NAME: allow(PrincipalKind.DUCHY)}),
    )
    await run_until_signal(server)

Ports: the gRPC port serves only mutual-TLS clients whose certificate chains to a trusted root;
`health_port` serves `grpc.health.v1.Health` in plaintext for probes that cannot do TLS (the
kubelet's); `http_port` serves `/healthz` and Prometheus `/metrics`. Port 0 picks a free port.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

from cmms.common.grpc.authz import ANY_AUTHENTICATED, AuthorizationPolicy
from cmms.common.grpc.channel import DEFAULT_MAX_MESSAGE_BYTES
from cmms.common.grpc.guard import CallGuard, GuardedRegistrar
from cmms.common.grpc.http import HealthAndMetricsServer
from cmms.common.grpc.tls import ServerTls
from cmms.common.identity import TrustConfig
from cmms.common.logging import get_logger

HEALTH_SERVICE_NAME: str = health.SERVICE_NAME
REFLECTION_SERVICE_NAME: str = reflection.SERVICE_NAME
_SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclass(frozen=True)
class ServiceBinding:
    """One service to serve: its full name and how to register it on a (guarded) server."""

    name: str
    register: Callable[[GuardedRegistrar], None]

    @classmethod
    def for_servicer(
        cls, name: str, add_to_server: Callable[[Any, Any], None], servicer: Any
    ) -> ServiceBinding:
        """A servicer with its generated `add_*Servicer_to_server` function."""
        return cls(name, lambda registrar: add_to_server(servicer, registrar))

    @classmethod
    def for_generic_handler(cls, handler: Any) -> ServiceBinding:
        """A `grpc.GenericRpcHandler` that knows its `service_name()`."""
        return cls(handler.service_name(), lambda r: r.add_generic_rpc_handlers((handler,)))


@dataclass(frozen=True)
class ServerOptions:
    """Where and how a server listens; `None` disables the health or HTTP port."""

    name: str
    host: str = "127.0.0.1"
    port: int = 0
    health_port: int | None = 0
    http_port: int | None = 0
    enable_reflection: bool = False
    shutdown_grace_seconds: float = 10.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class BoundPorts:
    """The ports actually bound (useful when 0 was asked for)."""

    grpc: int
    health: int | None
    http: int | None


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _server_args(options: ServerOptions) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_send_message_length", options.max_message_bytes),
        ("grpc.max_receive_message_length", options.max_message_bytes),
        # Clients ping every 30 s on long streams; the server default would answer with GOAWAY.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        # With SO_REUSEPORT two servers could silently share a port; a clash must be an error.
        ("grpc.so_reuseport", 0),
    ]


class SecureServer:
    """A gRPC aio server over mutual TLS whose every call is authenticated, authorised and logged."""

    def __init__(
        self,
        options: ServerOptions,
        tls: ServerTls,
        services: Sequence[ServiceBinding],
        policy: AuthorizationPolicy,
        *,
        trust: TrustConfig | None = None,
    ) -> None:
        self._options = options
        self._tls = tls
        self._services = list(services)
        self._policy = policy.merged(
            {HEALTH_SERVICE_NAME: ANY_AUTHENTICATED, REFLECTION_SERVICE_NAME: ANY_AUTHENTICATED}
        )
        self._trust = trust
        self._health = HealthServicer()
        self._logger = get_logger("cmms.grpc.server", server=options.name)
        self._grpc: grpc.aio.Server | None = None
        self._health_server: grpc.aio.Server | None = None
        self._http: HealthAndMetricsServer | None = None
        self._ports: BoundPorts | None = None
        self._serving = False
        self._stopped = asyncio.Event()
        self._drain: asyncio.Future[None] | None = None

    @property
    def health(self) -> HealthServicer:
        """The health servicer (shared by the mTLS and the plaintext port)."""
        return self._health

    @property
    def ports(self) -> BoundPorts:
        """The bound ports; only after `start`."""
        if self._ports is None:
            raise RuntimeError("server not started")
        return self._ports

    @property
    def serving(self) -> bool:
        """True between a successful `start` and the beginning of `stop`."""
        return self._serving

    @property
    def service_names(self) -> list[str]:
        """Every service on the mTLS port, health and reflection included."""
        names = [s.name for s in self._services] + [HEALTH_SERVICE_NAME]
        if self._options.enable_reflection:
            names.append(REFLECTION_SERVICE_NAME)
        return names

    async def start(self) -> BoundPorts:
        """Bind every port and start serving; raises `RuntimeError` if a port cannot be bound."""
        if self._grpc is not None:
            raise RuntimeError("server already started")
        try:
            return await self._start()
        except BaseException:
            await self._close_partially_started()
            raise

    async def _close_partially_started(self) -> None:
        for server in (self._grpc, self._health_server):
            if server is not None:
                await server.stop(None)
        if self._http is not None:
            await self._http.stop()
        self._serving = False
        self._stopped.set()

    async def _start(self) -> BoundPorts:
        options = self._options
        trust = self._trust or self._tls.load_trust_config()
        guard = CallGuard.create(options.name, trust, self._policy)
        self._grpc = grpc.aio.server(options=_server_args(options))
        registrar = GuardedRegistrar(self._grpc, guard)
        for service in self._services:
            service.register(registrar)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, registrar)
        if options.enable_reflection:
            reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
                ReflectionServicer(self.service_names), registrar
            )
        grpc_port = self._grpc.add_secure_port(
            _address(options.host, options.port), self._tls.credentials()
        )
        health_port = None
        if options.health_port is not None:
            self._health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self._health, self._health_server)
            health_port = self._health_server.add_insecure_port(
                _address(options.host, options.health_port)
            )
        http_port = None
        if options.http_port is not None:
            self._http = HealthAndMetricsServer(
                options.host, options.http_port, is_healthy=lambda: self._serving
            )
            http_port = await self._http.start()
        await self._grpc.start()
        if self._health_server is not None:
            await self._health_server.start()
        for name in ["", *self.service_names]:
            await self._health.set(name, _SERVING)
        self._ports = BoundPorts(grpc=grpc_port, health=health_port, http=http_port)
        self._serving = True
        self._logger.info(
            "server_started",
            grpc_port=grpc_port,
            health_port=health_port,
            http_port=http_port,
            services=self.service_names,
        )
        return self._ports

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Drain: report NOT_SERVING, refuse new calls, give running calls the grace period.

        Concurrent and repeated calls wait for the first drain to finish.
        """
        if self._grpc is None:
            return
        if self._drain is None:
            grace = self._options.shutdown_grace_seconds if grace_seconds is None else grace_seconds
            self._drain = asyncio.ensure_future(self._drain_and_close(self._grpc, grace))
        await asyncio.shield(self._drain)

    async def _drain_and_close(self, server: grpc.aio.Server, grace: float) -> None:
        if self._stopped.is_set():
            return
        self._serving = False
        self._logger.info("server_draining", grace_seconds=grace)
        await self._health.enter_graceful_shutdown()
        await server.stop(grace)
        if self._health_server is not None:
            await self._health_server.stop(None)
        if self._http is not None:
            await self._http.stop()
        self._stopped.set()
        self._logger.info("server_stopped")

    async def wait_for_termination(self) -> None:
        """Return once `stop` has finished."""
        await self._stopped.wait()

    async def __aenter__(self) -> SecureServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


DEFAULT_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run_until_signal(
    server: SecureServer,
    *,
    signals: Sequence[signal.Signals] = DEFAULT_STOP_SIGNALS,
    started: Callable[[BoundPorts], None] | None = None,
) -> None:
    """Start `server`, serve until one of `signals` arrives, then drain and return.

    `started` is called with the bound ports once the server is serving. Must run on the main
    thread's event loop (signal handlers are installed on it).
    """
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    previous = {sig: signal.getsignal(sig) for sig in signals}
    for sig in signals:
        loop.add_signal_handler(sig, stop_requested.set)
    try:
        ports = await server.start()
        if started is not None:
            started(ports)
        stop_wait = asyncio.ensure_future(stop_requested.wait())
        termination_wait = asyncio.ensure_future(server.wait_for_termination())
        try:
            await asyncio.wait({stop_wait, termination_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
            termination_wait.cancel()
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            # remove_signal_handler resets to the default action; put back what was there.
            signal.signal(sig, handler)
        await server.stop()


async def serve(
    options: ServerOptions,
    tls: ServerTls,
    services: Sequence[ServiceBinding],
    policy: AuthorizationPolicy,
) -> None:
    """Build a `SecureServer` and run it until SIGTERM or SIGINT."""
    await run_until_signal(SecureServer(options, tls, services, policy))
