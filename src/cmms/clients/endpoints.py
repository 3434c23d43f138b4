"""`endpoints.json`: where a running system's parties listen, written by `cmms local up`.

Clients (`cmms mc measure`, `cmms edp simulate --endpoints`) read it instead of a dozen flags.
Schema (version 1; unknown keys are errors; relative paths are relative to the file)::

    {
      "version": 1,
      "pki_dir": "pki",                       # a `cmms certs generate` directory
      "tls_server_name": null,                # override the TLS name checked on servers, if any
      "kingdom": {"public_api": "127.0.0.1:8443", "system_api": "127.0.0.1:8444"},
      "duchies": {
        "worker1": {
          "requisition_fulfillment": "127.0.0.1:9101",   # public API, called by EDPs
          "computation_control": "127.0.0.1:9102",       # system API, called by other duchies
          "internal_api": "127.0.0.1:9103"               # the duchy's own components only
        }
      },
      "measurement_consumers": ["mc1"],       # party ids, as in the PKI
      "data_providers": ["edp1", "edp2", "edp3"]
    }
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from cmms.common.errors import UserError
from cmms.common.pki import PkiLayout

ENDPOINTS_FILE = "endpoints.json"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KingdomEndpoints(_Model):
    public_api: str
    system_api: str


class DuchyEndpoints(_Model):
    requisition_fulfillment: str
    computation_control: str | None = None
    internal_api: str | None = None


class Endpoints(_Model):
    """Targets (`host:port`) of every service, the PKI directory and the party ids."""

    version: Literal[1] = 1
    pki_dir: Path
    tls_server_name: str | None = None
    kingdom: KingdomEndpoints
    duchies: dict[str, DuchyEndpoints] = {}
    measurement_consumers: list[str] = []
    data_providers: list[str] = []

    @classmethod
    def load(cls, path: Path) -> Endpoints:
        """Read and validate the file; a relative `pki_dir` is taken relative to it."""
        try:
            endpoints = cls.model_validate_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read endpoints file {path}: {exc}") from exc
        except ValidationError as exc:
            raise UserError(f"invalid endpoints file {path}: {exc}") from exc
        if not endpoints.pki_dir.is_absolute():
            endpoints = endpoints.model_copy(update={"pki_dir": path.parent / endpoints.pki_dir})
        return endpoints

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @property
    def pki(self) -> PkiLayout:
        return PkiLayout(self.pki_dir)

    def requisition_fulfillment_targets(self) -> dict[str, str]:
        """Duchy id -> the target EDPs upload to."""
        return {duchy: e.requisition_fulfillment for duchy, e in self.duchies.items()}
