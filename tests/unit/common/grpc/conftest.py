from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from cmms.common.grpc import ChannelSettings, ClientTls, SecureServer, ServerOptions, ServerTls
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.testing.grpc_probe import PROBE_POLICY, Probe

Connect = Callable[..., grpc.aio.Channel]


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
async def probe_server(dev_pki: PkiLayout, probe: Probe) -> AsyncIterator[SecureServer]:
    server = SecureServer(
        ServerOptions(name="probe", enable_reflection=True, shutdown_grace_seconds=0),
        ServerTls.from_pki(dev_pki, Principal.kingdom()),
        probe.bindings(),
        PROBE_POLICY,
    )
    async with server:
        yield server


@pytest.fixture
async def connect(dev_pki: PkiLayout) -> AsyncIterator[Connect]:
    """Open channels as a party of `dev_pki`; all are closed at teardown."""
    channels: list[grpc.aio.Channel] = []

    def open_channel(
        port: int, principal: Principal, settings: ChannelSettings | None = None
    ) -> grpc.aio.Channel:
        from cmms.common.grpc import secure_channel

        channel = secure_channel(
            f"127.0.0.1:{port}", ClientTls.from_pki(dev_pki, principal), settings
        )
        channels.append(channel)
        return channel

    yield open_channel
    for channel in channels:
        await channel.close()
