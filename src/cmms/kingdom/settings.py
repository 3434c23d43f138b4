"""Settings of `cmms kingdom serve` (every flag is also an env var `CMMS_KINGDOM_<FIELD>`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import SettingsConfigDict

from cmms.common.grpc import ServerTls
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.common.settings import CmmsSettings

ENV_PREFIX = "CMMS_KINGDOM_"


def kingdom_env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


class KingdomSettings(CmmsSettings):
    """Where the Kingdom keeps its data, what it serves, and its TLS identity.

    TLS: give `pki_dir` (a `cmms certs generate` directory: the `kingdom` party's TLS files,
    `all_root_certs.pem` and `trust_config.json`), or the four files one by one (they win).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, populate_by_name=True
    )

    database_url: str = "sqlite:///kingdom.db"
    config_file: Path
    pki_dir: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    trusted_roots_file: Path | None = None
    trust_config_file: Path | None = None
    host: str = "127.0.0.1"
    public_port: int = 8443
    system_port: int = 8444
    health_port: int | None = 8080
    metrics_port: int | None = 9090

    @model_validator(mode="after")
    def _tls_given(self) -> KingdomSettings:
        self.server_tls()
        return self

    def server_tls(self) -> ServerTls:
        """The TLS files; `ValueError` if neither a PKI directory nor all four files are given."""
        defaults = (
            ServerTls.from_pki(PkiLayout(self.pki_dir), Principal.kingdom())
            if self.pki_dir is not None
            else None
        )
        files = {
            "tls_cert_file": self.tls_cert_file or (defaults and defaults.cert_file),
            "tls_key_file": self.tls_key_file or (defaults and defaults.key_file),
            "trusted_roots_file": self.trusted_roots_file
            or (defaults and defaults.trusted_roots_file),
            "trust_config_file": self.trust_config_file
            or (defaults and defaults.trust_config_file),
        }
        missing = [name for name, path in files.items() if not path]
        if missing:
            raise ValueError(f"give pki_dir or {', '.join(missing)}")
        return ServerTls(
            cert_file=Path(files["tls_cert_file"]),  # type: ignore[arg-type]
            key_file=Path(files["tls_key_file"]),  # type: ignore[arg-type]
            trusted_roots_file=Path(files["trusted_roots_file"]),  # type: ignore[arg-type]
            trust_config_file=Path(files["trust_config_file"]),  # type: ignore[arg-type]
        )
