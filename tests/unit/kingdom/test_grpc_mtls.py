"""The Kingdom through real gRPC over mutual TLS (shared bootstrap, development PKI)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from cmms.api.public.v1 import (
    data_providers_pb2,
    data_providers_pb2_grpc,
    measurements_pb2,
    measurements_pb2_grpc,
    requisitions_pb2,
    requisitions_pb2_grpc,
)
from cmms.api.system.v1 import computation_participants_pb2 as participants_pb2
from cmms.api.system.v1 import computation_participants_pb2_grpc as participants_pb2_grpc
from cmms.api.system.v1 import computation_pb2, computations_pb2, computations_pb2_grpc
from cmms.common.grpc import ClientTls, ServerTls, secure_channel
from cmms.common.identity import Principal
from cmms.common.pki import PkiLayout
from cmms.kingdom.server import KingdomPorts, KingdomServer
from cmms.kingdom.system.computations import StreamSettings
from cmms.testing.kingdom import MC, Flow, KingdomWorld, kingdom_test_config
from cmms.testing.pki import untrusted_pki

__all__ = ["untrusted_pki"]
EDPS = ("edp1", "edp2", "edp3")


@pytest.fixture
async def served(
    tmp_path: Path, dev_pki: PkiLayout
) -> AsyncIterator[tuple[KingdomWorld, KingdomPorts]]:
    world = await KingdomWorld.open(f"sqlite+aiosqlite:///{tmp_path / 'kingdom.db'}", dev_pki)
    server = KingdomServer(
        world.repositories,
        ServerTls.from_pki(dev_pki, Principal.kingdom()),
        stream=StreamSettings(max_lifetime=0),
        shutdown_grace_seconds=0,
    )
    ports = await server.start()
    try:
        yield world, ports
    finally:
        await server.stop()
        await world.close()


def channel(pki: PkiLayout, port: int, principal: Principal) -> grpc.aio.Channel:
    return secure_channel(f"localhost:{port}", ClientTls.from_pki(pki, principal))


async def test_measurement_round_trip_over_mtls(
    served: tuple[KingdomWorld, KingdomPorts], dev_pki: PkiLayout
) -> None:
    world, ports = served
    async with channel(dev_pki, ports.public.grpc, Principal.data_provider("edp1")) as edp1:
        # Each EDP declares HMSS support itself.
        for dp_id in EDPS:
            async with channel(dev_pki, ports.public.grpc, Principal.data_provider(dp_id)) as c:
                await data_providers_pb2_grpc.DataProvidersStub(c).ReplaceDataProviderCapabilities(
                    data_providers_pb2.ReplaceDataProviderCapabilitiesRequest(
                        name=f"dataProviders/{dp_id}",
                        capabilities=data_providers_pb2.DataProvider.Capabilities(
                            honest_majority_share_shuffle_supported=True
                        ),
                    )
                )
        request = world.measurement_request(EDPS)
        async with channel(dev_pki, ports.public.grpc, MC) as mc:
            created = await measurements_pb2_grpc.MeasurementsStub(mc).CreateMeasurement(
                request.request
            )
        assert created.protocol_config.HasField("honest_majority_share_shuffle")

        computation_name = ""
        for duchy_id in ("aggregator", "worker1", "worker2"):
            async with channel(dev_pki, ports.system.grpc, Principal.duchy(duchy_id)) as system:
                stream = computations_pb2_grpc.ComputationsStub(system).StreamActiveComputations(
                    computations_pb2.StreamActiveComputationsRequest()
                )
                responses = [r async for r in stream]
                assert [r.computation.state for r in responses] == [
                    computation_pb2.Computation.PENDING_REQUISITION_PARAMS
                ]
                computation_name = responses[0].computation.name
                participants = participants_pb2_grpc.ComputationParticipantsStub(system)
                name = f"{computation_name}/participants/{duchy_id}"
                current = await participants.GetComputationParticipant(
                    participants_pb2.GetComputationParticipantRequest(name=name)
                )
                updated = await participants.SetParticipantRequisitionParams(
                    participants_pb2.SetParticipantRequisitionParamsRequest(
                        name=name,
                        requisition_params=world.requisition_params(
                            duchy_id, "honest_majority_share_shuffle"
                        ),
                        etag=current.etag,
                    )
                )
                assert updated.state == computation_pb2.ComputationParticipant.READY

        listed = await requisitions_pb2_grpc.RequisitionsStub(edp1).ListRequisitions(
            requisitions_pb2.ListRequisitionsRequest(parent="dataProviders/edp1")
        )
        assert len(listed.requisitions) == 1
        assert listed.requisitions[0].measurement == created.name
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await requisitions_pb2_grpc.RequisitionsStub(edp1).ListRequisitions(
                requisitions_pb2.ListRequisitionsRequest(parent="dataProviders/edp2")
            )
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # An EDP cannot reach the duchies' API at all.
        async with channel(dev_pki, ports.system.grpc, Principal.data_provider("edp1")) as wrong:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await computations_pb2_grpc.ComputationsStub(wrong).GetComputation(
                    computations_pb2.GetComputationRequest(name=computation_name)
                )
        assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_unknown_roots_are_refused(
    served: tuple[KingdomWorld, KingdomPorts], untrusted_pki: PkiLayout, dev_pki: PkiLayout
) -> None:
    _, ports = served
    # Trust the Kingdom's real root, but present a client certificate from a foreign root.
    tls = ClientTls(
        cert_file=untrusted_pki.party(MC).tls_cert,
        key_file=untrusted_pki.party(MC).tls_key,
        trusted_roots_file=dev_pki.all_root_certs,
    )
    async with secure_channel(f"localhost:{ports.public.grpc}", tls) as foreign:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await measurements_pb2_grpc.MeasurementsStub(foreign).GetMeasurement(
                measurements_pb2.GetMeasurementRequest(
                    name="measurementConsumers/mc1/measurements/AAAAAAAAAAE"
                )
            )
    assert raised.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAUTHENTICATED)


async def test_the_server_runs_the_ttl_job(tmp_path: Path, dev_pki: PkiLayout) -> None:
    world = await KingdomWorld.open(
        f"sqlite+aiosqlite:///{tmp_path / 'kingdom.db'}",
        dev_pki,
        config=kingdom_test_config(measurement_ttl_seconds=60),
    )
    try:
        flow = Flow(world)
        measurement = await flow.create(world.measurement_request(EDPS))
        world.advance(timedelta(minutes=2))
        changes = world.repositories.changes
        seen = changes.version
        server = KingdomServer(
            world.repositories,
            ServerTls.from_pki(dev_pki, Principal.kingdom()),
            shutdown_grace_seconds=0,
            clock=world.clock,
        )
        async with server:
            # The first pass runs at start; wait for its commit (the timeout is only a safety net).
            assert await changes.wait_for_change(seen, timeout=60)
            state = (await flow.get_measurement(measurement.name)).state
        assert state == measurements_pb2.Measurement.CANCELLED
    finally:
        await world.close()
