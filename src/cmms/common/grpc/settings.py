"""Settings shared by every gRPC server and client process (flags and `CMMS_*` env vars).

Component settings inherit these, so each deployable gets the same TLS and port flags.
"""

from __future__ import annotations

from pathlib import Path

from cmms.common.grpc.channel import DEFAULT_MAX_MESSAGE_BYTES
from cmms.common.grpc.server import ServerOptions
from cmms.common.grpc.tls import ClientTls, ServerTls
from cmms.common.settings import CmmsSettings


class GrpcClientSettings(CmmsSettings):
    """This party's TLS certificate and key, and the roots it trusts."""

    tls_cert_file: Path
    tls_key_file: Path
    cert_collection_file: Path

    def client_tls(self) -> ClientTls:
        """Credentials files for outgoing channels."""
        return ClientTls(self.tls_cert_file, self.tls_key_file, self.cert_collection_file)


class GrpcServerSettings(GrpcClientSettings):
    """A server's TLS files, trust config and ports (a negative port disables health or HTTP)."""

    trust_config_file: Path
    host: str = "127.0.0.1"
    port: int = 8443
    health_port: int = 8080
    http_port: int = 9090
    enable_reflection: bool = False
    shutdown_grace_seconds: float = 10.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    def server_tls(self) -> ServerTls:
        """Certificate, key, trusted roots and trust config of the server."""
        return ServerTls(
            self.tls_cert_file, self.tls_key_file, self.cert_collection_file, self.trust_config_file
        )

    def server_options(self, name: str) -> ServerOptions:
        """Options for a server called `name` in logs and metrics."""
        return ServerOptions(
            name=name,
            host=self.host,
            port=self.port,
            health_port=self.health_port if self.health_port >= 0 else None,
            http_port=self.http_port if self.http_port >= 0 else None,
            enable_reflection=self.enable_reflection,
            shutdown_grace_seconds=self.shutdown_grace_seconds,
            max_message_bytes=self.max_message_bytes,
        )
