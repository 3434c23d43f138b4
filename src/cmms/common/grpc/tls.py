"""TLS material for servers and clients: file paths in, gRPC credentials out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from cmms.common.identity import Principal, TrustConfig
from cmms.common.pki import PkiLayout


@dataclass(frozen=True)
class ServerTls:
    """A server's certificate and key, the roots it trusts, and whose root is whose."""

    cert_file: Path
    key_file: Path
    trusted_roots_file: Path
    trust_config_file: Path

    @classmethod
    def from_pki(cls, layout: PkiLayout, principal: Principal) -> ServerTls:
        """`principal`'s TLS certificate, trusting every root of the development PKI."""
        files = layout.party(principal)
        return cls(files.tls_cert, files.tls_key, layout.all_root_certs, layout.trust_config)

    def credentials(self) -> grpc.ServerCredentials:
        """Credentials that require and verify a client certificate against the trusted roots."""
        return grpc.ssl_server_credentials(
            [(self.key_file.read_bytes(), self.cert_file.read_bytes())],
            root_certificates=self.trusted_roots_file.read_bytes(),
            require_client_auth=True,
        )

    def load_trust_config(self) -> TrustConfig:
        """The root SKID -> principal map."""
        return TrustConfig.load(self.trust_config_file)


@dataclass(frozen=True)
class ClientTls:
    """A client's certificate and key, and the roots it trusts for servers."""

    cert_file: Path
    key_file: Path
    trusted_roots_file: Path

    @classmethod
    def from_pki(cls, layout: PkiLayout, principal: Principal) -> ClientTls:
        """`principal`'s TLS certificate, trusting every root of the development PKI."""
        files = layout.party(principal)
        return cls(files.tls_cert, files.tls_key, layout.all_root_certs)

    def credentials(self) -> grpc.ChannelCredentials:
        """Channel credentials presenting the client certificate."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.trusted_roots_file.read_bytes(),
            private_key=self.key_file.read_bytes(),
            certificate_chain=self.cert_file.read_bytes(),
        )
