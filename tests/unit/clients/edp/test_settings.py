"""EDP settings: files default to the PKI directory, flags win, env vars work."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cmms.clients.edp.settings import EdpSettings
from cmms.clients.edp.simulator import parse_duchy_targets
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout


def test_files_come_from_the_pki_directory(dev_pki: PkiLayout) -> None:
    settings = EdpSettings(edp_id="edp2", kingdom_target="k:1", pki_dir=dev_pki.directory)
    files = settings.files()
    party = dev_pki.party(Principal.data_provider("edp2"))
    assert files["signing_key_file"] == party.cs_key
    assert files["tls_cert_file"] == party.tls_cert
    assert files["encryption_private_keyset_file"].name == "edp2_enc_private.tink"


def test_an_explicit_file_wins_over_the_pki_directory(dev_pki: PkiLayout, tmp_path: Path) -> None:
    key = tmp_path / "other.der"
    settings = EdpSettings(
        edp_id="edp1", kingdom_target="k:1", pki_dir=dev_pki.directory, signing_key_file=key
    )
    assert settings.files()["signing_key_file"] == key


def test_without_pki_directory_every_file_is_required() -> None:
    with pytest.raises(ValidationError, match="give pki_dir"):
        EdpSettings(edp_id="edp1", kingdom_target="k:1")


def test_env_vars_fill_settings(dev_pki: PkiLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CMMS_EDP_KINGDOM_TARGET", "kingdom:8443")
    monkeypatch.setenv("CMMS_EDP_DUCHY_TARGETS", '["worker1=w1:1"]')
    monkeypatch.setenv("CMMS_EDP_OVERLAP", "0.25")
    settings = EdpSettings(edp_id="edp1", pki_dir=dev_pki.directory)  # type: ignore[call-arg]
    assert settings.kingdom_target == "kingdom:8443"
    assert settings.overlap == 0.25
    assert parse_duchy_targets(settings.duchy_targets) == {"worker1": "w1:1"}


@pytest.mark.parametrize("bad", ["worker1", "=h:1", "worker1="])
def test_bad_duchy_targets_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duchy_targets([bad])
