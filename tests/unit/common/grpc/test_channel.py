"""Client channels: options, service config, and retries against a real server."""

from __future__ import annotations

import json

import grpc
import pytest

from cmms.common.grpc import ChannelSettings, RetryPolicy, SecureServer
from cmms.common.grpc.channel import channel_options, retry_service_config
from cmms.common.identity import Principal
from cmms.testing.grpc_probe import Probe

from .conftest import Connect

EDP1 = Principal.data_provider("edp1")


def test_service_config_names_methods_and_whole_services() -> None:
    config = json.loads(retry_service_config(["/a.B/C", "a.D"], RetryPolicy(max_attempts=3)))
    [method_config] = config["methodConfig"]
    assert method_config["name"] == [{"service": "a.B", "method": "C"}, {"service": "a.D"}]
    assert method_config["retryPolicy"]["maxAttempts"] == 3
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_no_idempotent_methods_means_no_retry_config() -> None:
    assert json.loads(retry_service_config([], RetryPolicy())) == {}


@pytest.mark.parametrize("bad", ["", "/a.B/", "/a/b/c"])
def test_bad_method_names_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        retry_service_config([bad], RetryPolicy())


def test_options_carry_limits_keepalive_and_override() -> None:
    options = dict(
        channel_options(ChannelSettings(target_name_override="localhost", max_message_bytes=123))
    )
    assert options["grpc.ssl_target_name_override"] == "localhost"
    assert options["grpc.max_receive_message_length"] == 123
    assert options["grpc.max_send_message_length"] == 123
    assert options["grpc.keepalive_time_ms"] > 0
    assert "grpc.ssl_target_name_override" not in dict(channel_options(ChannelSettings()))


async def test_idempotent_method_is_retried_on_unavailable(
    probe_server: SecureServer, probe: Probe, connect: Connect
) -> None:
    settings = ChannelSettings(
        idempotent_methods=["/test.Probe/Flaky"],
        retry_policy=RetryPolicy(initial_backoff_seconds=0.01, max_backoff_seconds=0.05),
    )
    channel = connect(probe_server.ports.grpc, EDP1, settings)
    assert await channel.unary_unary("/test.Probe/Flaky")(b"retried", timeout=20) == b"ok"
    assert probe.attempts[b"retried"] == 2


async def test_other_methods_are_not_retried(
    probe_server: SecureServer, probe: Probe, connect: Connect
) -> None:
    channel = connect(probe_server.ports.grpc, EDP1)
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await channel.unary_unary("/test.Probe/Flaky")(b"once", timeout=20)
    assert excinfo.value.code() == grpc.StatusCode.UNAVAILABLE
    assert probe.attempts[b"once"] == 1
