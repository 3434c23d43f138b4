"""Free loopback ports, picked once when a local system starts."""

from __future__ import annotations

import contextlib
import socket

LOOPBACK = "127.0.0.1"


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """`count` distinct ports that were free on `host` a moment ago.

    Every socket stays bound until all are picked, so the ports differ from each other. Another
    program could still take one before its server binds it; the server then fails to start and
    the supervisor says so.
    """
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]


class PortPool:
    """Hands out the ports of one `free_ports` call, one at a time."""

    def __init__(self, count: int, host: str = LOOPBACK) -> None:
        self._ports = free_ports(count, host)

    def take(self) -> int:
        if not self._ports:
            raise RuntimeError("the port pool is exhausted")
        return self._ports.pop()
