"""Settings of `cmms edp simulate`; every field is also the env var `CMMS_EDP_<FIELD>`.

Key and TLS files default to the party's files in `pki_dir` (a `cmms certs generate` directory);
any file given explicitly wins. List-valued env vars take JSON, e.g.
`CMMS_EDP_DUCHY_TARGETS='["worker1=127.0.0.1:9101"]'`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from cmms.clients.edp.population import DEFAULT_FREQUENCY_WEIGHTS
from cmms.common.grpc import ClientTls
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.common.settings import CmmsSettings

ENV_PREFIX = "CMMS_EDP_"


def edp_env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


class EdpSettings(CmmsSettings):
    """Who the EDP is, whom it talks to, and what its synthetic audience looks like."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, populate_by_name=True
    )

    edp_id: str
    kingdom_target: str
    duchy_targets: tuple[str, ...] = ()
    tls_server_name: str | None = None
    pki_dir: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    trusted_roots_file: Path | None = None
    trust_config_file: Path | None = None
    signing_key_file: Path | None = None
    encryption_private_keyset_file: Path | None = None
    measurement_consumers: tuple[str, ...] = ()
    population_seed: int = 1
    population_size: int = Field(default=100_000, ge=1)
    first_vid: int = Field(default=1, ge=0)
    reach_fraction: float = Field(default=0.3, ge=0, le=1)
    overlap: float = Field(default=0.5, ge=0, le=1)
    frequency_weights: tuple[float, ...] = DEFAULT_FREQUENCY_WEIGHTS
    poll_interval_seconds: float = Field(default=5.0, gt=0)
    hmss_supported: bool = True
    trustee_supported: bool = False
    kms_kek_uri: str | None = None

    @model_validator(mode="after")
    def _files_given(self) -> EdpSettings:
        self.files()
        return self

    @property
    def principal(self) -> Principal:
        return Principal.data_provider(self.edp_id)

    def files(self) -> dict[str, Path]:
        """Every key and TLS file; `ValueError` if one is neither given nor in `pki_dir`."""
        layout = PkiLayout(self.pki_dir) if self.pki_dir is not None else None
        party = layout.party(self.principal) if layout else None
        defaults: dict[str, Path | None] = {
            "tls_cert_file": party.tls_cert if party else None,
            "tls_key_file": party.tls_key if party else None,
            "trusted_roots_file": layout.all_root_certs if layout else None,
            "trust_config_file": layout.trust_config if layout else None,
            "signing_key_file": party.cs_key if party else None,
            "encryption_private_keyset_file": (
                layout.encryption_keys(self.principal).private_keyset if layout else None
            ),
        }
        chosen: dict[str, Path] = {}
        missing: list[str] = []
        for name, default in defaults.items():
            path: Path | None = getattr(self, name) or default
            if path is None:
                missing.append(name)
            else:
                chosen[name] = path
        if missing:
            raise ValueError(f"give pki_dir or {', '.join(missing)}")
        return chosen

    def client_tls(self) -> ClientTls:
        files = self.files()
        return ClientTls(files["tls_cert_file"], files["tls_key_file"], files["trusted_roots_file"])
