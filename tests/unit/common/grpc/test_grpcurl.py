"""grpcurl, an independent gRPC implementation (Go), as a real external mTLS client."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2

from cmms.common.grpc import SecureServer
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or shutil.which("grpcurl")

pytestmark = pytest.mark.skipif(GRPCURL is None, reason="grpcurl binary not installed")


async def grpcurl(*args: str) -> tuple[int, str, str]:
    assert GRPCURL is not None
    process = await asyncio.create_subprocess_exec(
        GRPCURL,
        "-max-time",
        "30",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def mtls_args(layout: PkiLayout, principal: Principal) -> list[str]:
    files = layout.party(principal)
    return [
        "-cacert",
        str(layout.all_root_certs),
        "-cert",
        str(files.tls_cert),
        "-key",
        str(files.tls_key),
        "-authority",
        "localhost",
    ]


async def test_lists_services_through_reflection(
    probe_server: SecureServer, dev_pki: PkiLayout
) -> None:
    target = f"127.0.0.1:{probe_server.ports.grpc}"
    code, out, err = await grpcurl(*mtls_args(dev_pki, Principal.duchy("worker1")), target, "list")
    assert code == 0, err
    assert set(out.split()) == {
        "test.Probe",
        "test.Closed",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    }


async def test_health_check_over_mtls(probe_server: SecureServer, dev_pki: PkiLayout) -> None:
    target = f"127.0.0.1:{probe_server.ports.grpc}"
    code, out, err = await grpcurl(
        *mtls_args(dev_pki, Principal.data_provider("edp2")), target, "grpc.health.v1.Health/Check"
    )
    assert code == 0, err
    assert json.loads(out) == {"status": "SERVING"}


async def test_health_check_on_the_plaintext_port(
    probe_server: SecureServer, tmp_path: Path
) -> None:
    # The plaintext port has no reflection, so grpcurl reads the schema from a protoset.
    protoset = tmp_path / "health.protoset"
    descriptors = descriptor_pb2.FileDescriptorSet()
    health_pb2.DESCRIPTOR.CopyToProto(descriptors.file.add())
    protoset.write_bytes(descriptors.SerializeToString())
    target = f"127.0.0.1:{probe_server.ports.health}"
    code, out, err = await grpcurl(
        "-plaintext",
        "-protoset",
        str(protoset),
        "-d",
        '{"service": "test.Probe"}',
        target,
        "grpc.health.v1.Health/Check",
    )
    assert code == 0, err
    assert json.loads(out) == {"status": "SERVING"}


async def test_without_client_certificate_grpcurl_is_refused(
    probe_server: SecureServer, dev_pki: PkiLayout
) -> None:
    target = f"127.0.0.1:{probe_server.ports.grpc}"
    code, out, _ = await grpcurl(
        "-cacert", str(dev_pki.all_root_certs), "-authority", "localhost", target, "list"
    )
    assert code != 0
    assert "grpc.health.v1.Health" not in out
