"""Server and client settings read flags and CMMS_* environment variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from cmms.common.grpc.settings import GrpcClientSettings, GrpcServerSettings
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout


def test_server_settings_from_environment(
    dev_pki: PkiLayout, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = dev_pki.party(Principal.duchy("worker1"))
    monkeypatch.setenv("CMMS_TLS_CERT_FILE", str(files.tls_cert))
    monkeypatch.setenv("CMMS_TLS_KEY_FILE", str(files.tls_key))
    monkeypatch.setenv("CMMS_CERT_COLLECTION_FILE", str(dev_pki.all_root_certs))
    monkeypatch.setenv("CMMS_TRUST_CONFIG_FILE", str(dev_pki.trust_config))
    monkeypatch.setenv("CMMS_HTTP_PORT", "-1")
    settings = GrpcServerSettings(port=0, enable_reflection=True)
    options = settings.server_options("duchy-internal")
    assert (options.name, options.port, options.health_port, options.http_port) == (
        "duchy-internal",
        0,
        8080,
        None,
    )
    assert options.enable_reflection
    tls = settings.server_tls()
    assert tls.cert_file == files.tls_cert
    assert tls.load_trust_config() == dev_pki.load_trust_config()
    assert settings.client_tls().trusted_roots_file == dev_pki.all_root_certs


def test_client_settings_require_the_tls_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tls_key_file"):
        GrpcClientSettings(tls_cert_file=tmp_path / "c", cert_collection_file=tmp_path / "r")
