"""Secure gRPC plumbing shared by every server and client of the system.

Servers: `SecureServer` / `serve` (mutual TLS, caller identity from the certificate's AKID,
declarative authorisation, health, metrics, reflection, graceful drain). Clients:
`secure_channel`. Service code raises `StatusError` (or calls `fail`) to end a call with a status.
"""

from __future__ import annotations

from cmms.common.grpc.authz import ANY_AUTHENTICATED, Allow, AuthorizationPolicy, allow, only
from cmms.common.grpc.channel import ChannelSettings, RetryPolicy, secure_channel
from cmms.common.grpc.server import (
    BoundPorts,
    SecureServer,
    ServerOptions,
    ServiceBinding,
    run_until_signal,
    serve,
)
from cmms.common.grpc.status import StatusError, fail
from cmms.common.grpc.tls import ClientTls, ServerTls

__all__ = [
    "ANY_AUTHENTICATED",
    "Allow",
    "AuthorizationPolicy",
    "BoundPorts",
    "ChannelSettings",
    "ClientTls",
    "RetryPolicy",
    "SecureServer",
    "ServerOptions",
    "ServerTls",
    "ServiceBinding",
    "StatusError",
    "allow",
    "fail",
    "only",
    "run_until_signal",
    "secure_channel",
    "serve",
]
