"""A 200 MB stage input streams through a computation-control server process (started with the
real CLI) while that process's peak RSS grows by far less than the payload."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from cmms.api.system.v1 import computation_control_pb2, computation_control_pb2_grpc
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.duchy.deployable import DuchyDeployable
from cmms.testing.duchy_fixtures import DUCHY, ChannelOpener
from cmms.testing.duchy_stack import ComputationDriver, stage_of

pb = computation_control_pb2
Header = pb.AdvanceComputationRequest.Header
REGISTER = 198
CHUNK = REGISTER * 10_000  # ~1.9 MiB per message
CHUNKS = 106  # 209,880,000 bytes: over 200 MiB
MAX_PEAK_GROWTH = 100 * 1024 * 1024
_PORT_LINE = re.compile(rb"serving on gRPC port (\d+)")


def peak_rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


def requests(gid: str, chunks: int, data: bytes) -> Iterator[pb.AdvanceComputationRequest]:
    header = Header(
        name=f"computations/{gid}",
        liquid_legions_v2=Header.LiquidLegionsV2(
            description=Header.LiquidLegionsV2.SETUP_PHASE_INPUT
        ),
    )
    yield pb.AdvanceComputationRequest(header=header)
    body = pb.AdvanceComputationRequest.BodyChunk(partial_data=data)
    for _ in range(chunks):
        yield pb.AdvanceComputationRequest(body_chunk=body)


@pytest.fixture
async def server_process(
    dev_pki: PkiLayout,
    internal_api: DuchyDeployable,
    async_control: DuchyDeployable,
    blob_root: Path,
) -> AsyncIterator[tuple[int, int]]:
    """(pid, gRPC port) of `cmms duchy computation-control` in a subprocess."""
    files = dev_pki.party(DUCHY)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cmms.deploy.cli import main; main()",
        "duchy",
        "computation-control",
        f"--tls-cert-file={files.tls_cert}",
        f"--tls-key-file={files.tls_key}",
        f"--cert-collection-file={dev_pki.all_root_certs}",
        f"--trust-config-file={dev_pki.trust_config}",
        "--duchy-name=aggregator",
        "--host=127.0.0.1",
        "--port=0",
        "--health-port=-1",
        "--http-port=-1",
        "--shutdown-grace-seconds=1",
        f"--internal-api-target=127.0.0.1:{internal_api.ports.grpc}",
        f"--async-computation-control-target=127.0.0.1:{async_control.ports.grpc}",
        f"--blob-storage-url={blob_root.as_uri()}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    port: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def drain(stream: asyncio.StreamReader) -> None:
        # Keep reading so the server never blocks on a full pipe; remember the port line.
        async for line in stream:
            match = _PORT_LINE.search(line)
            if match and not port.done():
                port.set_result(int(match.group(1)))
        if not port.done():
            port.set_exception(RuntimeError("the server exited before serving"))

    reader = asyncio.create_task(drain(process.stderr))
    try:
        yield process.pid, await asyncio.wait_for(port, timeout=60)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def test_a_200_mb_input_streams_with_bounded_memory(
    driver: ComputationDriver,
    server_process: tuple[int, int],
    channel_to: ChannelOpener,
    blob_root: Path,
) -> None:
    pid, port = server_process
    await driver.llv2_aggregator_waiting_for_setup_inputs("c1")
    stub = computation_control_pb2_grpc.ComputationControlStub(
        channel_to(port, Principal.duchy("worker1"))
    )
    # Warm up the whole path (TLS, stubs, storage) before taking the baseline.
    await stub.AdvanceComputation(requests("c1", 1, b"\x01" * REGISTER))
    baseline = peak_rss_bytes(pid)

    worker2 = computation_control_pb2_grpc.ComputationControlStub(
        channel_to(port, Principal.duchy("worker2"))
    )
    await worker2.AdvanceComputation(requests("c1", CHUNKS, b"\x02" * CHUNK), timeout=300)

    growth = peak_rss_bytes(pid) - baseline
    stored = blob_root / "computations" / "c1" / "WAIT_SETUP_PHASE_INPUTS" / "1"
    assert stored.stat().st_size == CHUNKS * CHUNK >= 200 * 1024 * 1024
    assert stage_of(await driver.get("c1")) == 6  # both inputs recorded: SETUP_PHASE
    assert growth < MAX_PEAK_GROWTH, f"peak RSS grew by {growth / 2**20:.1f} MiB"
