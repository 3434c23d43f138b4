"""`cmms duchy internal-api | async-computation-control | computation-control |
requisition-fulfillment`: settings from flags or CMMS_* variables, serving, draining on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.deploy.cli import main
from cmms.testing.pki import dev_pki

__all__ = ["dev_pki"]
SERVER_COMMANDS = (
    "internal-api",
    "async-computation-control",
    "computation-control",
    "requisition-fulfillment",
)


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_duchy_help_lists_every_server(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["duchy", "--help"]) == 0
    out = capsys.readouterr().out
    for command in SERVER_COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", SERVER_COMMANDS)
def test_missing_settings_fail_in_one_line(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("CMMS_"):
            monkeypatch.delenv(name)
    assert run(["duchy", command]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cmms: error: invalid settings:")
    assert "--duchy-name (or CMMS_DUCHY_NAME)" in err
    assert err.strip().count("\n") == 0


async def test_internal_api_serves_from_environment_and_drains_on_sigterm(
    dev_pki: PkiLayout, tmp_path: Path
) -> None:
    files = dev_pki.party(Principal.duchy("aggregator"))
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CMMS_")},
        "CMMS_TLS_CERT_FILE": str(files.tls_cert),
        "CMMS_TLS_KEY_FILE": str(files.tls_key),
        "CMMS_CERT_COLLECTION_FILE": str(dev_pki.all_root_certs),
        "CMMS_TRUST_CONFIG_FILE": str(dev_pki.trust_config),
        "CMMS_DUCHY_NAME": "aggregator",
        "CMMS_DATABASE_URL": f"sqlite:///{tmp_path / 'duchy.db'}",
        "CMMS_BLOB_STORAGE_URL": (tmp_path / "blobs").as_uri(),
        "CMMS_MIGRATE": "true",
        "CMMS_PORT": "0",
        "CMMS_HEALTH_PORT": "0",
        "CMMS_HTTP_PORT": "-1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cmms.deploy.cli import main; main()",
        "duchy",
        "internal-api",
        env=environment,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:
        line = b""
        while b"serving on gRPC port" not in line:
            line = await asyncio.wait_for(process.stderr.readline(), timeout=60)
            assert line, "the server exited before serving"
        match = re.search(rb"\(health (\d+),", line)
        assert match is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{int(match.group(1))}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.stderr.read(), timeout=60)
        assert await asyncio.wait_for(process.wait(), timeout=60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
