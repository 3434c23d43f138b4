"""`cmms duchy cleaner` and `cmms duchy mill-scheduler` from flags and CMMS_* variables."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import structlog

from cmms.api.internal.duchy.v1 import computations_service_pb2, computations_service_pb2_grpc
from cmms.common.grpc import (
    AuthorizationPolicy,
    SecureServer,
    ServerOptions,
    ServerTls,
    ServiceBinding,
    only,
)
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.deploy.cli import main
from cmms.testing.pki import dev_pki

__all__ = ["dev_pki"]

WORKER1 = Principal.duchy("worker1")
COMPUTATIONS = computations_service_pb2.DESCRIPTOR.services_by_name["Computations"].full_name


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    # The commands configure logging to the stderr of the moment, which capsys then closes.
    yield
    structlog.reset_defaults()


def run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


class Purges(computations_service_pb2_grpc.ComputationsServicer):
    def __init__(self) -> None:
        self.requests: list[computations_service_pb2.PurgeComputationsRequest] = []

    async def PurgeComputations(
        self, request: computations_service_pb2.PurgeComputationsRequest, context: Any
    ) -> computations_service_pb2.PurgeComputationsResponse:
        self.requests.append(request)
        sample = [] if request.force else ["old-one"]
        return computations_service_pb2.PurgeComputationsResponse(
            purge_count=1, purge_sample=sample
        )


@pytest.fixture
async def internal_api(dev_pki: PkiLayout) -> AsyncIterator[tuple[Purges, int]]:
    servicer = Purges()
    server = SecureServer(
        ServerOptions(name="internal-api", health_port=None, http_port=None),
        ServerTls.from_pki(dev_pki, WORKER1),
        [
            ServiceBinding.for_servicer(
                COMPUTATIONS,
                computations_service_pb2_grpc.add_ComputationsServicer_to_server,
                servicer,
            )
        ],
        AuthorizationPolicy({COMPUTATIONS: only(WORKER1)}),
    )
    async with server:
        yield servicer, server.ports.grpc


def tls_env(pki: PkiLayout, monkeypatch: pytest.MonkeyPatch) -> None:
    files = pki.party(WORKER1)
    monkeypatch.setenv("CMMS_TLS_CERT_FILE", str(files.tls_cert))
    monkeypatch.setenv("CMMS_TLS_KEY_FILE", str(files.tls_key))
    monkeypatch.setenv("CMMS_CERT_COLLECTION_FILE", str(pki.all_root_certs))


async def test_cleaner_dry_run_over_mutual_tls(
    dev_pki: PkiLayout,
    internal_api: tuple[Purges, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    servicer, port = internal_api
    tls_env(dev_pki, monkeypatch)
    monkeypatch.setenv("CMMS_COMPUTATIONS_TIME_TO_LIVE", "180d")
    argv = [
        "duchy",
        "cleaner",
        f"--internal-api-target=127.0.0.1:{port}",
        "--internal-api-cert-host=localhost",
        "--dry-run",
    ]

    # The CLI runs its own event loop; the server keeps serving on this one.
    assert await asyncio.to_thread(run, argv) == 0

    assert len(servicer.requests) == 4 and not any(r.force for r in servicer.requests)
    out = capsys.readouterr().out
    assert "would purge 1 LIQUID_LEGIONS_V2 computations (e.g. old-one)" in out
    assert "would purge 1 TRUS_TEE computations" in out


async def test_cleaner_purges_for_real_without_dry_run(
    dev_pki: PkiLayout,
    internal_api: tuple[Purges, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    servicer, port = internal_api
    tls_env(dev_pki, monkeypatch)
    argv = [
        "duchy",
        "cleaner",
        f"--internal-api-target=127.0.0.1:{port}",
        "--internal-api-cert-host=localhost",
    ]

    assert await asyncio.to_thread(run, argv) == 0

    assert len(servicer.requests) == 4 and all(r.force for r in servicer.requests)
    assert "purged 1 HONEST_MAJORITY_SHARE_SHUFFLE computations" in capsys.readouterr().out


def test_cleaner_with_a_zero_time_to_live_contacts_nobody(
    dev_pki: PkiLayout, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tls_env(dev_pki, monkeypatch)
    # Port 1 on loopback: any connection attempt would fail the command.
    argv = [
        "duchy",
        "cleaner",
        "--internal-api-target=127.0.0.1:1",
        "--computations-time-to-live=0",
    ]

    assert run(argv) == 0
    assert "cleaner is off" in capsys.readouterr().out


def test_cleaner_failing_to_reach_the_internal_api_fails(
    dev_pki: PkiLayout, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tls_env(dev_pki, monkeypatch)
    argv = ["duchy", "cleaner", "--internal-api-target=127.0.0.1:1", "--rpc-deadline=2s"]

    assert run(argv) != 0
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("cmms: error: purging failed: LIQUID_LEGIONS_V2: UNAVAILABLE")


def test_a_bad_duration_is_one_line_naming_the_flag(
    dev_pki: PkiLayout, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tls_env(dev_pki, monkeypatch)
    argv = ["duchy", "cleaner", "--internal-api-target=x:1", "--computations-time-to-live=soon"]

    assert run(argv) == 2
    err = capsys.readouterr().err
    assert "--computations-time-to-live" in err and err.strip().count("\n") == 0


def test_mill_scheduler_kubernetes_launcher_without_its_names_is_refused(
    dev_pki: PkiLayout, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tls_env(dev_pki, monkeypatch)
    monkeypatch.setenv("CMMS_LAUNCHER", "kubernetes")
    argv = ["duchy", "mill-scheduler", "--duchy-name=worker1", "--internal-api-target=x:1"]

    assert run(argv) == 2
    assert "deployment_name" in capsys.readouterr().err
