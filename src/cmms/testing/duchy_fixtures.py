"""Pytest fixtures running one duchy's servers on loopback (the duchy is `aggregator`).

Use from a conftest: `from cmms.testing.duchy_fixtures import *  # noqa: F403`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest

from cmms.api.internal.duchy.v1 import (
    async_computation_control_service_pb2_grpc,
    computations_service_pb2_grpc,
)
from cmms.common.grpc import SecureServer
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.duchy.control.async_server import build_async_computation_control
from cmms.duchy.control.server import build_computation_control
from cmms.duchy.deployable import DuchyDeployable
from cmms.duchy.fulfillment.server import build_requisition_fulfillment
from cmms.duchy.internal_api.server import build_internal_api
from cmms.duchy.settings import (
    AsyncComputationControlSettings,
    ComputationControlSettings,
    InternalApiSettings,
    RequisitionFulfillmentSettings,
)
from cmms.testing.duchy_stack import (
    AGGREGATOR,
    ComputationDriver,
    FakeKingdomRequisitions,
    fake_kingdom_server,
    open_channel,
    server_settings,
)
from cmms.testing.pki import dev_pki
from cmms.testing.scratch_databases import (
    POSTGRES_SKIP_REASON,
    postgres_server_url,
    scratch_postgres_database,
    sqlite_url,
)
from cmms.testing.spanner_emulator import SpannerEmulator, spanner_emulator

DUCHY = Principal.duchy(AGGREGATOR)
ChannelOpener = Callable[..., grpc.aio.Channel]
# Small so that a test can exceed it cheaply.
TEST_MAX_PAYLOAD_BYTES = 1024 * 1024

__all__ = [
    "DUCHY",
    "async_control",
    "async_stub",
    "blob_root",
    "channel_to",
    "computation_control",
    "dev_pki",
    "driver",
    "duchy_database_url",
    "fake_kingdom",
    "internal_api",
    "internal_stub",
    "requisition_fulfillment",
    "spanner_emulator",
]


@pytest.fixture(params=["sqlite", "postgresql", "spanner"])
def duchy_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: SQLite always, PostgreSQL when CMMS_TEST_POSTGRES_URL is set, Spanner
    when its emulator is installed."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    if request.param == "spanner":
        emulator: SpannerEmulator = request.getfixturevalue("spanner_emulator")
        yield emulator.new_database_url("duchy-api")
        return
    server = postgres_server_url()
    if server is None:
        pytest.skip(POSTGRES_SKIP_REASON)
    with scratch_postgres_database(server, prefix="cmms_duchy_api_test") as url:
        yield url


@pytest.fixture
def blob_root(tmp_path: Path) -> Path:
    root = tmp_path / "blobs"
    root.mkdir()
    return root


@pytest.fixture
async def internal_api(
    dev_pki: PkiLayout, duchy_database_url: str, blob_root: Path
) -> AsyncIterator[DuchyDeployable]:
    settings = InternalApiSettings(
        **server_settings(
            dev_pki,
            DUCHY,
            duchy_name=AGGREGATOR,
            database_url=duchy_database_url,
            blob_storage_url=blob_root.as_uri(),
            migrate=True,
        )
    )
    async with await build_internal_api(settings) as deployable:
        yield deployable


@pytest.fixture
async def channel_to(dev_pki: PkiLayout) -> AsyncIterator[ChannelOpener]:
    """`channel_to(port, principal)`: a channel closed at teardown."""
    channels: list[grpc.aio.Channel] = []

    def open_to(port: int, principal: Principal = DUCHY) -> grpc.aio.Channel:
        channel = open_channel(dev_pki, port, principal)
        channels.append(channel)
        return channel

    yield open_to
    for channel in channels:
        await channel.close()


@pytest.fixture
def internal_stub(
    internal_api: DuchyDeployable, channel_to: ChannelOpener
) -> computations_service_pb2_grpc.ComputationsStub:
    return computations_service_pb2_grpc.ComputationsStub(channel_to(internal_api.ports.grpc))


@pytest.fixture
def driver(internal_stub: computations_service_pb2_grpc.ComputationsStub) -> ComputationDriver:
    return ComputationDriver(internal_stub)


@pytest.fixture
async def async_control(
    dev_pki: PkiLayout, internal_api: DuchyDeployable
) -> AsyncIterator[DuchyDeployable]:
    settings = AsyncComputationControlSettings(
        **server_settings(
            dev_pki,
            DUCHY,
            duchy_name=AGGREGATOR,
            internal_api_target=f"127.0.0.1:{internal_api.ports.grpc}",
            advance_initial_backoff_seconds=0.01,
        )
    )
    async with build_async_computation_control(settings) as deployable:
        yield deployable


@pytest.fixture
def async_stub(
    async_control: DuchyDeployable, channel_to: ChannelOpener
) -> async_computation_control_service_pb2_grpc.AsyncComputationControlStub:
    channel = channel_to(async_control.ports.grpc)
    return async_computation_control_service_pb2_grpc.AsyncComputationControlStub(channel)


@pytest.fixture
async def computation_control(
    dev_pki: PkiLayout,
    internal_api: DuchyDeployable,
    async_control: DuchyDeployable,
    blob_root: Path,
) -> AsyncIterator[DuchyDeployable]:
    settings = ComputationControlSettings(
        **server_settings(
            dev_pki,
            DUCHY,
            duchy_name=AGGREGATOR,
            internal_api_target=f"127.0.0.1:{internal_api.ports.grpc}",
            async_computation_control_target=f"127.0.0.1:{async_control.ports.grpc}",
            blob_storage_url=blob_root.as_uri(),
            max_payload_bytes=TEST_MAX_PAYLOAD_BYTES,
        )
    )
    async with build_computation_control(settings) as deployable:
        yield deployable


@pytest.fixture
async def fake_kingdom(dev_pki: PkiLayout) -> AsyncIterator[tuple[FakeKingdomRequisitions, int]]:
    servicer = FakeKingdomRequisitions()
    server: SecureServer = fake_kingdom_server(dev_pki, servicer)
    async with server:
        yield servicer, server.ports.grpc


@pytest.fixture
async def requisition_fulfillment(
    dev_pki: PkiLayout,
    internal_api: DuchyDeployable,
    fake_kingdom: tuple[FakeKingdomRequisitions, int],
    blob_root: Path,
) -> AsyncIterator[DuchyDeployable]:
    settings = RequisitionFulfillmentSettings(
        **server_settings(
            dev_pki,
            DUCHY,
            duchy_name=AGGREGATOR,
            internal_api_target=f"127.0.0.1:{internal_api.ports.grpc}",
            kingdom_system_api_target=f"127.0.0.1:{fake_kingdom[1]}",
            blob_storage_url=blob_root.as_uri(),
            max_payload_bytes=TEST_MAX_PAYLOAD_BYTES,
        )
    )
    async with build_requisition_fulfillment(settings) as deployable:
        yield deployable
