"""A minimal HTTP/1.1 endpoint for probes and scrapers: `/healthz` and Prometheus `/metrics`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

_MAX_REQUEST_HEAD = 16 * 1024
_READ_TIMEOUT_SECONDS = 10.0


class HealthAndMetricsServer:
    """Serves `GET /healthz` (200 while healthy, else 503) and `GET /metrics`; closes after each reply."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        is_healthy: Callable[[], bool],
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._host = host
        self._port = port
        self._is_healthy = is_healthy
        self._registry = registry
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Start listening; returns the bound port."""
        self._server = await asyncio.start_server(
            self._handle, self._host, self._port, limit=_MAX_REQUEST_HEAD
        )
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._server is not None:
            self._server.close()
            # Python 3.13 added close_clients(); before it, wait_closed() does not wait for them.
            close_clients = getattr(self._server, "close_clients", None)
            if close_clients is not None:
                close_clients()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_SECONDS)
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            method, target = (
                (request_line[0], request_line[1]) if len(request_line) >= 2 else ("", "")
            )
            status, content_type, body = self._respond(method, target.split("?", 1)[0])
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("latin-1")
            )
            if method != "HEAD":
                writer.write(body)
            await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _respond(self, method: str, path: str) -> tuple[str, str, bytes]:
        text = "text/plain; charset=utf-8"
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", text, b"method not allowed\n"
        if path == "/healthz":
            if self._is_healthy():
                return "200 OK", text, b"ok\n"
            return "503 Service Unavailable", text, b"not serving\n"
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self._registry)
        return "404 Not Found", text, b"not found\n"
