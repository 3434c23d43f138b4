"""The secure server over real mutual TLS on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from cmms.common.grpc import (
    AuthorizationPolicy,
    ChannelSettings,
    ClientTls,
    SecureServer,
    ServerOptions,
    ServerTls,
    allow,
    run_until_signal,
)
from cmms.common.identity import Principal, PrincipalKind
from cmms.common.pki import PkiLayout
from cmms.testing.grpc_probe import PROBE_POLICY, Probe

from .conftest import Connect

EDP1 = Principal.data_provider("edp1")
WORKER1 = Principal.duchy("worker1")
CALL_TIMEOUT = 20.0


async def call(channel: grpc.aio.Channel, method: str, request: bytes = b"") -> bytes:
    response: bytes = await channel.unary_unary(method)(request, timeout=CALL_TIMEOUT)
    return response


async def status_of(
    channel: grpc.aio.Channel, method: str, request: bytes = b""
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as excinfo:
        await call(channel, method, request)
    return excinfo.value


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=CALL_TIMEOUT) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize(
    "principal",
    [EDP1, WORKER1, Principal.measurement_consumer("mc1"), Principal.kingdom()],
)
async def test_trusted_party_is_identified_by_its_certificate(
    probe_server: SecureServer, connect: Connect, principal: Principal
) -> None:
    channel = connect(probe_server.ports.grpc, principal)
    assert await call(channel, "/test.Probe/WhoAmI") == principal.resource_name.encode()


async def test_target_name_override_reaches_the_server(
    probe_server: SecureServer, connect: Connect
) -> None:
    channel = connect(
        probe_server.ports.grpc, EDP1, ChannelSettings(target_name_override="localhost")
    )
    assert await call(channel, "/test.Probe/WhoAmI") == b"dataProviders/edp1"


async def test_client_without_certificate_is_refused_at_handshake(
    probe_server: SecureServer, dev_pki: PkiLayout
) -> None:
    credentials = grpc.ssl_channel_credentials(dev_pki.all_root_certs.read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{probe_server.ports.grpc}", credentials) as ch:
        error = await status_of(ch, "/test.Probe/WhoAmI")
    assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_from_an_untrusted_root_is_refused(
    probe_server: SecureServer, dev_pki: PkiLayout, untrusted_pki: PkiLayout
) -> None:
    stranger = untrusted_pki.party(EDP1)
    tls = ClientTls(stranger.tls_cert, stranger.tls_key, dev_pki.all_root_certs)
    async with grpc.aio.secure_channel(
        f"127.0.0.1:{probe_server.ports.grpc}", tls.credentials()
    ) as ch:
        error = await status_of(ch, "/test.Probe/WhoAmI")
    assert error.code() == grpc.StatusCode.UNAVAILABLE


async def test_root_missing_from_trust_config_is_unauthenticated(
    dev_pki: PkiLayout, probe: Probe, connect: Connect
) -> None:
    trust = dev_pki.load_trust_config().without(EDP1)
    server = SecureServer(
        ServerOptions(name="probe-partial-trust", health_port=None, http_port=None),
        ServerTls.from_pki(dev_pki, Principal.kingdom()),
        probe.bindings(),
        PROBE_POLICY,
        trust=trust,
    )
    async with server:
        error = await status_of(connect(server.ports.grpc, EDP1), "/test.Probe/WhoAmI")
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "unknown root" in (error.details() or "")
        assert await call(connect(server.ports.grpc, WORKER1), "/test.Probe/WhoAmI")


async def test_duchy_only_method_denies_a_data_provider(
    probe_server: SecureServer, connect: Connect
) -> None:
    error = await status_of(connect(probe_server.ports.grpc, EDP1), "/test.Probe/DuchyOnly")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "only by duchies" in (error.details() or "")
    assert "dataProviders/edp1" in (error.details() or "")
    assert await call(connect(probe_server.ports.grpc, WORKER1), "/test.Probe/DuchyOnly") == b"ok"


async def test_method_without_a_rule_is_closed(
    probe_server: SecureServer, connect: Connect
) -> None:
    error = await status_of(connect(probe_server.ports.grpc, WORKER1), "/test.Closed/Anything")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "not open to any caller" in (error.details() or "")


async def test_status_error_and_crash_reach_the_client(
    probe_server: SecureServer, connect: Connect
) -> None:
    channel = connect(probe_server.ports.grpc, EDP1)
    error = await status_of(channel, "/test.Probe/Fail", b"p1")
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "no probe named 'p1'"
    crash = await status_of(channel, "/test.Probe/Crash")
    assert crash.code() == grpc.StatusCode.UNKNOWN


async def test_streaming_handlers_see_the_caller_and_stream(
    probe_server: SecureServer, connect: Connect
) -> None:
    channel = connect(probe_server.ports.grpc, WORKER1)
    responses = [
        r async for r in channel.unary_stream("/test.Probe/Count")(b"3", timeout=CALL_TIMEOUT)
    ]
    assert responses == [b"0", b"1", b"2"]

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"ab", b"cd", b"e"):
            yield chunk

    joined = await channel.stream_unary("/test.Probe/Concat")(chunks(), timeout=CALL_TIMEOUT)
    assert joined == b"abcde"


async def test_each_call_is_logged_and_counted(
    probe_server: SecureServer, connect: Connect
) -> None:
    method = "/test.Probe/DuchyOnly"
    labels = {"server": "probe", "method": method, "code": "PERMISSION_DENIED"}
    before = REGISTRY.get_sample_value("cmms_grpc_server_handled_total", labels) or 0.0
    with capture_logs() as logs:
        await status_of(connect(probe_server.ports.grpc, EDP1), method)
    assert REGISTRY.get_sample_value("cmms_grpc_server_handled_total", labels) == before + 1
    rpc_lines = [line for line in logs if line["event"] == "rpc" and line["method"] == method]
    assert len(rpc_lines) == 1
    assert rpc_lines[0]["code"] == "PERMISSION_DENIED"
    assert rpc_lines[0]["caller"] == "dataProviders/edp1"
    assert rpc_lines[0]["latency_ms"] >= 0

    status, body = await asyncio.to_thread(http_get, probe_server.ports.http or 0, "/metrics")
    assert status == 200
    assert (
        'cmms_grpc_server_handled_total{code="PERMISSION_DENIED",method="/test.Probe/DuchyOnly",server="probe"}'
        in body
    )
    assert "cmms_grpc_server_handling_seconds_bucket" in body


async def test_health_on_plaintext_port_and_http(probe_server: SecureServer) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{probe_server.ports.health}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "test.Probe"):
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert await asyncio.to_thread(http_get, probe_server.ports.http or 0, "/healthz") == (
        200,
        "ok\n",
    )
    status, _ = await asyncio.to_thread(http_get, probe_server.ports.http or 0, "/nowhere")
    assert status == 404


async def test_health_is_also_served_over_mtls(
    probe_server: SecureServer, connect: Connect
) -> None:
    stub = health_pb2_grpc.HealthStub(connect(probe_server.ports.grpc, EDP1))
    reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=CALL_TIMEOUT)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_sigterm_drains_in_flight_calls_and_refuses_new_ones(
    dev_pki: PkiLayout, probe: Probe, connect: Connect
) -> None:
    server = SecureServer(
        ServerOptions(name="probe-drain", shutdown_grace_seconds=60),
        ServerTls.from_pki(dev_pki, Principal.kingdom()),
        probe.bindings(),
        PROBE_POLICY,
    )
    handler_before = signal.getsignal(signal.SIGTERM)
    started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    serving = asyncio.create_task(
        run_until_signal(server, started=lambda _: started.set_result(None))
    )
    await started
    ports = server.ports
    in_flight = asyncio.create_task(call(connect(ports.grpc, EDP1), "/test.Probe/Wait"))
    await probe.entered.wait()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{ports.health}") as health_channel:
        watch = health_pb2_grpc.HealthStub(health_channel).Watch(health_pb2.HealthCheckRequest())
        statuses = aiter(watch)
        assert (await anext(statuses)).status == health_pb2.HealthCheckResponse.SERVING

        os.kill(os.getpid(), signal.SIGTERM)

        assert (await anext(statuses)).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()
    assert await asyncio.to_thread(http_get, ports.http or 0, "/healthz") == (503, "not serving\n")
    refused = await status_of(connect(ports.grpc, EDP1), "/test.Probe/WhoAmI")
    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert not serving.done()

    probe.release.set()
    assert await in_flight == b"done"
    await serving
    assert signal.getsignal(signal.SIGTERM) == handler_before


async def test_ports_must_be_free(
    dev_pki: PkiLayout, probe_server: SecureServer, probe: Probe
) -> None:
    clash = SecureServer(
        ServerOptions(
            name="probe-clash", port=probe_server.ports.grpc, health_port=None, http_port=None
        ),
        ServerTls.from_pki(dev_pki, Principal.kingdom()),
        probe.bindings(),
        PROBE_POLICY,
    )
    with pytest.raises(RuntimeError):
        await clash.start()


async def test_log_line_reports_ok_and_abort_codes(
    probe_server: SecureServer, connect: Connect
) -> None:
    channel = connect(probe_server.ports.grpc, WORKER1)
    stub = health_pb2_grpc.HealthStub(channel)
    with capture_logs() as logs:
        await call(channel, "/test.Probe/WhoAmI")
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await stub.Check(health_pb2.HealthCheckRequest(service="no.Such"), timeout=CALL_TIMEOUT)
        await status_of(channel, "/test.Probe/Crash")
    assert excinfo.value.code() == grpc.StatusCode.NOT_FOUND
    codes = {line["method"]: line["code"] for line in logs if line["event"] == "rpc"}
    assert codes == {
        "/test.Probe/WhoAmI": "OK",
        "/grpc.health.v1.Health/Check": "NOT_FOUND",
        "/test.Probe/Crash": "UNKNOWN",
    }


async def test_stop_is_idempotent_and_a_no_op_before_start(
    dev_pki: PkiLayout, probe: Probe
) -> None:
    server = SecureServer(
        ServerOptions(name="probe-double-stop", health_port=None, http_port=None),
        ServerTls.from_pki(dev_pki, Principal.kingdom()),
        probe.bindings(),
        PROBE_POLICY,
    )
    await server.stop()
    assert not server.serving
    await server.start()
    assert server.serving
    await asyncio.gather(server.stop(0), server.stop(0))
    await server.stop(0)
    assert not server.serving
    await server.wait_for_termination()
    with pytest.raises(RuntimeError, match="already started"):
        await server.start()


async def test_generated_registered_handlers_are_guarded_too(
    dev_pki: PkiLayout, probe: Probe, connect: Connect
) -> None:
    # Generated code registers health through add_registered_method_handlers, which gRPC
    # prefers over the generic handler; a policy override must still apply to it.
    policy = AuthorizationPolicy(
        {**PROBE_POLICY.rules, "grpc.health.v1.Health": allow(PrincipalKind.DUCHY)}
    )
    server = SecureServer(
        ServerOptions(name="probe-health-duchies", health_port=None, http_port=None),
        ServerTls.from_pki(dev_pki, Principal.kingdom()),
        probe.bindings(),
        policy,
    )
    async with server:
        request = health_pb2.HealthCheckRequest()
        edp_stub = health_pb2_grpc.HealthStub(connect(server.ports.grpc, EDP1))
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await edp_stub.Check(request, timeout=CALL_TIMEOUT)
        assert excinfo.value.code() == grpc.StatusCode.PERMISSION_DENIED
        duchy_stub = health_pb2_grpc.HealthStub(connect(server.ports.grpc, WORKER1))
        reply = await duchy_stub.Check(request, timeout=CALL_TIMEOUT)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
