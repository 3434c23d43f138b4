"""`run_mill_scheduler` wiring: ClaimWork over mutual TLS, signals, /metrics, launcher choice."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cmms.api.internal.duchy.v1 import (
    computation_token_pb2,
    computations_service_pb2,
    computations_service_pb2_grpc,
)
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
from cmms.duchy.scheduler import MillType, SubprocessLauncher
from cmms.duchy.scheduler.kubernetes_launcher import KubernetesJobLauncher
from cmms.duchy.scheduler.runner import build_launcher, run_mill_scheduler
from cmms.duchy.scheduler.settings import MillSchedulerSettings
from cmms.protocols.stages import ProtocolType
from cmms.testing.fake_kubernetes import FakeKubernetesApi
from cmms.testing.pki import dev_pki

from .fakes import RecordingLauncher, pod_template

__all__ = ["dev_pki"]

WORKER1 = Principal.duchy("worker1")
COMPUTATIONS = computations_service_pb2.DESCRIPTOR.services_by_name["Computations"].full_name


class InternalApi(computations_service_pb2_grpc.ComputationsServicer):
    """One claimable HMSS computation; sets `stop` at the next ClaimWork after handing it out."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.owners: list[tuple[int, str]] = []
        self.handed_out = False

    async def ClaimWork(
        self, request: computations_service_pb2.ClaimWorkRequest, context: Any
    ) -> computations_service_pb2.ClaimWorkResponse:
        self.owners.append((request.computation_type, request.owner))
        if self.handed_out:
            # The scheduler moved on (to the next type), so the claim has been launched.
            self.stop.set()
        elif request.computation_type == ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE:
            self.handed_out = True
            token = computation_token_pb2.ComputationToken(global_computation_id="gid-7", version=3)
            return computations_service_pb2.ClaimWorkResponse(token=token)
        return computations_service_pb2.ClaimWorkResponse()


@pytest.fixture
async def internal_api(dev_pki: PkiLayout) -> AsyncIterator[tuple[InternalApi, int]]:
    servicer = InternalApi()
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


def settings(pki: PkiLayout, port: int = 1, **overrides: Any) -> MillSchedulerSettings:
    files = pki.party(WORKER1)
    values: dict[str, Any] = {
        "tls_cert_file": files.tls_cert,
        "tls_key_file": files.tls_key,
        "cert_collection_file": pki.all_root_certs,
        "duchy_name": "worker1",
        "internal_api_target": f"127.0.0.1:{port}",
        "internal_api_cert_host": "localhost",
        "polling_delay": "10ms",
        "http_port": -1,
    }
    return MillSchedulerSettings(**(values | overrides))


async def test_claims_over_mutual_tls_are_launched(
    dev_pki: PkiLayout, internal_api: tuple[InternalApi, int]
) -> None:
    servicer, port = internal_api
    launcher = RecordingLauncher()

    await asyncio.wait_for(
        run_mill_scheduler(settings(dev_pki, port), servicer.stop, launcher=launcher), timeout=60
    )

    ((mill_type, claim),) = launcher.launched
    assert mill_type is MillType.HMSS
    assert (claim.global_computation_id, claim.version) == ("gid-7", 3)
    assert (ProtocolType.HONEST_MAJORITY_SHARE_SHUFFLE, claim.mill_id) in servicer.owners
    assert launcher.closed


async def test_sigterm_stops_the_scheduler(dev_pki: PkiLayout) -> None:
    launcher = RecordingLauncher()

    def terminate_self(_port: int | None) -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    # The internal API is unreachable: cycles fail and are retried until the signal arrives.
    await asyncio.wait_for(
        run_mill_scheduler(settings(dev_pki), started=terminate_self, launcher=launcher),
        timeout=60,
    )

    assert launcher.closed and launcher.launched == []


async def test_metrics_and_health_are_served(dev_pki: PkiLayout) -> None:
    stop = asyncio.Event()
    pages: dict[str, bytes] = {}

    async def fetch_then_stop(port: int) -> None:
        try:
            for path in ("/healthz", "/metrics"):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                pages[path] = await reader.read()
                writer.close()
        finally:
            stop.set()

    tasks: list[asyncio.Task[None]] = []

    def started(port: int | None) -> None:
        assert port is not None
        tasks.append(asyncio.create_task(fetch_then_stop(port)))

    await asyncio.wait_for(
        run_mill_scheduler(
            settings(dev_pki, http_port=0), stop, started=started, launcher=RecordingLauncher()
        ),
        timeout=60,
    )
    await tasks[0]

    assert pages["/healthz"].startswith(b"HTTP/1.1 200")
    assert b"cmms_mill_scheduler_cycle_errors_total" in pages["/metrics"]


async def test_the_subprocess_launcher_is_the_default(dev_pki: PkiLayout, tmp_path: Path) -> None:
    launcher = await build_launcher(settings(dev_pki, mill_log_dir=tmp_path))
    assert isinstance(launcher, SubprocessLauncher)
    await launcher.close()


@pytest.fixture
def fake_cluster() -> Iterator[FakeKubernetesApi]:
    api = FakeKubernetesApi()
    with api.running():
        api.add_deployment("duchies", "worker1-mill-job-scheduler")
        api.add_pod_template("duchies", pod_template("worker1-llv2-mill"))
        yield api


async def test_the_kubernetes_launcher_connects_through_a_kubeconfig(
    dev_pki: PkiLayout, tmp_path: Path, fake_cluster: FakeKubernetesApi
) -> None:
    chosen = settings(
        dev_pki,
        launcher="kubernetes",
        kubeconfig=fake_cluster.kubeconfig(tmp_path / "kubeconfig"),
        namespace="duchies",
        deployment_name="worker1-mill-job-scheduler",
        llv2_pod_template_name="worker1-llv2-mill",
        hmss_maximum_concurrency=0,
        trustee_maximum_concurrency=0,
    )

    launcher = await build_launcher(chosen)
    try:
        assert isinstance(launcher, KubernetesJobLauncher)
        assert await launcher.active_jobs(MillType.LLV2) == []
    finally:
        await launcher.close()
    assert [r.path.rsplit("/", 1)[-1] for r in fake_cluster.requests_of("GET")][:2] == [
        "worker1-mill-job-scheduler",
        "worker1-llv2-mill",
    ]


def test_the_kubernetes_launcher_needs_its_names(dev_pki: PkiLayout) -> None:
    with pytest.raises(ValueError, match="deployment_name, llv2_pod_template_name"):
        settings(
            dev_pki,
            launcher="kubernetes",
            hmss_pod_template_name="h",
            trustee_maximum_concurrency=0,
        )
