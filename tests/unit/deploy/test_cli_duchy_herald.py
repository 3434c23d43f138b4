"""`cmms duchy herald`: settings from flags or CMMS_* variables, startup checks, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.deploy.cli import main
from cmms.duchy.herald.config import dump_protocols_setup_config
from cmms.testing.herald import setup_config
from cmms.testing.pki import dev_pki

__all__ = ["dev_pki"]


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CMMS_"):
            monkeypatch.delenv(name)


def flags(pki: PkiLayout, tmp_path: Path, duchy: str = "worker1") -> list[str]:
    files = pki.party(Principal.duchy(duchy))
    setup = tmp_path / "setup.json"
    setup.write_text(dump_protocols_setup_config(setup_config()))
    return [
        f"--tls-cert-file={files.tls_cert}",
        f"--tls-key-file={files.tls_key}",
        f"--cert-collection-file={pki.all_root_certs}",
        f"--duchy-name={duchy}",
        "--kingdom-system-api-target=127.0.0.1:1",
        "--internal-api-target=127.0.0.1:1",
        f"--protocols-setup-config={setup}",
    ]


def test_help_lists_the_herald(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["duchy", "--help"]) == 0
    assert "herald" in capsys.readouterr().out


@pytest.mark.usefixtures("clean_environment")
def test_missing_settings_fail_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["duchy", "herald"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cmms: error: invalid settings:")
    assert "--protocols-setup-config (or CMMS_PROTOCOLS_SETUP_CONFIG)" in err
    assert err.strip().count("\n") == 0


@pytest.mark.usefixtures("clean_environment")
def test_only_terminal_states_are_deletable(
    dev_pki: PkiLayout, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["duchy", "herald", *flags(dev_pki, tmp_path), "--deletable-computation-states=x"]
    assert run(argv) == 2
    assert "not a terminal state" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_environment")
def test_an_hmss_worker_needs_a_key_encryption_key(
    dev_pki: PkiLayout, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["duchy", "herald", *flags(dev_pki, tmp_path)]) == 2
    assert "--key-encryption-key-uri" in capsys.readouterr().err


@pytest.mark.usefixtures("clean_environment")
def test_a_missing_setup_config_is_reported(
    dev_pki: PkiLayout, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["duchy", "herald", *flags(dev_pki, tmp_path, "aggregator")]
    argv[-1] = f"--protocols-setup-config={tmp_path / 'absent.yaml'}"
    assert run(argv) == 2
    assert "cannot read protocols setup config" in capsys.readouterr().err


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_sigterm_stops_the_herald_cleanly(dev_pki: PkiLayout, tmp_path: Path) -> None:
    # Nothing listens on the internal API yet: the Herald waits for it, and must still stop.
    port = _unused_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CMMS_")}
    environment["CMMS_INTERNAL_API_TARGET"] = f"127.0.0.1:{port}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cmms.deploy.cli import main; main()",
        "duchy",
        "herald",
        *[f for f in flags(dev_pki, tmp_path, "aggregator") if "internal-api" not in f],
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        line = b""
        while b"herald starting" not in line:  # logged once the signal handlers are in place
            line = await asyncio.wait_for(process.stderr.readline(), timeout=60)
            assert line, "the herald exited before starting"
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.stderr.read(), timeout=60)
        assert await asyncio.wait_for(process.wait(), timeout=60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
