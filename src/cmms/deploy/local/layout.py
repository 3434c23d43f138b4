"""Where a local system keeps its files under the workdir."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cmms.clients.endpoints import ENDPOINTS_FILE
from cmms.common.pki import PkiLayout


@dataclass(frozen=True)
class LocalLayout:
    """DIR/pki, DIR/logs, DIR/kingdom.json, DIR/duchies/{id}/, DIR/endpoints.json, ..."""

    root: Path

    @property
    def pki_dir(self) -> Path:
        return self.root / "pki"

    @property
    def pki(self) -> PkiLayout:
        return PkiLayout(self.pki_dir)

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def mill_logs(self, duchy_id: str) -> Path:
        """One file per mill job the duchy's scheduler launched."""
        return self.logs / "mills" / duchy_id

    @property
    def kingdom_config(self) -> Path:
        return self.root / "kingdom.json"

    @property
    def protocols_setup_config(self) -> Path:
        return self.root / "protocols_setup.json"

    @property
    def databases(self) -> Path:
        return self.root / "db"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    def duchy_dir(self, duchy_id: str) -> Path:
        return self.root / "duchies" / duchy_id

    def duchy_kek(self, duchy_id: str) -> Path:
        """The duchy's key-encryption key (a local KMS keyset) for per-computation keys."""
        return self.duchy_dir(duchy_id) / "kek.tink"

    @property
    def trustee_kek(self) -> Path:
        """The KMS key EDPs seal TrusTee payloads with, and the TrusTee duchy opens them with."""
        return self.root / "kms" / "trustee_kek.tink"

    @property
    def endpoints(self) -> Path:
        return self.root / ENDPOINTS_FILE
