"""`cmms certs generate` through the real CLI, and its output in real servers and clients."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cmms.common import x509 as x509_utils
from cmms.common.grpc import ClientTls, SecureServer, ServerOptions, ServerTls, secure_channel
from cmms.common.identity import Principal, PrincipalKind
from cmms.common.pki import PkiLayout
from cmms.deploy.cli import main
from cmms.testing.grpc_probe import PROBE_POLICY, Probe


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from cmms.deploy.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(directory.iterdir())}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> PkiLayout:
    out = tmp_path_factory.mktemp("cli") / "pki"
    main(["certs", "generate", "--out", str(out), "--duchies", "d1,d2", "--data-providers", "e1"])
    return PkiLayout(out)


def test_generates_the_named_parties_with_predictable_files(generated: PkiLayout) -> None:
    trust = generated.load_trust_config()
    expected = {
        Principal.kingdom(),
        Principal.duchy("d1"),
        Principal.duchy("d2"),
        Principal.data_provider("e1"),
        Principal.measurement_consumer("mc1"),
    }
    assert trust.principals == expected
    names = {p.name for p in generated.directory.iterdir()}
    assert names == {"all_root_certs.pem", "trust_config.json"} | {
        f"{p.id}_{suffix}"
        for p in expected
        for suffix in (
            "root.pem",
            "root.key",
            "tls.pem",
            "tls.key",
            "cs_cert.der",
            "cs_private.der",
        )
    } | {f"{i}_{s}" for i in ("e1", "mc1") for s in ("enc_private.tink", "enc_public.tink")}


def test_each_tls_certificate_maps_to_its_party(generated: PkiLayout) -> None:
    trust = generated.load_trust_config()
    for principal in trust.principals:
        tls = x509_utils.load_pem_certificate(generated.party(principal).tls_cert.read_bytes())
        akid = x509_utils.authority_key_identifier(tls)
        assert akid is not None
        assert trust.principal_for_akid(akid) == principal


async def test_output_loads_into_server_and_clients(generated: PkiLayout) -> None:
    server = SecureServer(
        ServerOptions(name="cli-pki", health_port=None, http_port=None),
        ServerTls.from_pki(generated, Principal.duchy("d1")),
        Probe().bindings(),
        PROBE_POLICY,
    )
    async with server:
        for principal in generated.load_trust_config().principals:
            async with secure_channel(
                f"127.0.0.1:{server.ports.grpc}", ClientTls.from_pki(generated, principal)
            ) as channel:
                who = await channel.unary_unary("/test.Probe/WhoAmI")(b"", timeout=20)
            assert who == principal.resource_name.encode()
            assert principal.kind in PrincipalKind


def test_second_run_without_force_fails_in_one_line_and_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    first = run_cli("certs", "generate", "--out", str(out))
    assert first.returncode == 0, first.stderr
    before = snapshot(out)

    second = run_cli("certs", "generate", "--out", str(out))
    assert second.returncode != 0
    assert second.stderr.strip().count("\n") == 0
    assert "--force" in second.stderr
    assert snapshot(out) == before

    forced = run_cli("certs", "generate", "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    after = snapshot(out)
    assert after.keys() == before.keys()
    assert after["kingdom_root.pem"] != before["kingdom_root.pem"]


def test_bad_party_id_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli("certs", "generate", "--out", str(tmp_path / "x"), "--duchies", "Bad_Id")
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "Bad_Id" in result.stderr
    assert not (tmp_path / "x").exists()
