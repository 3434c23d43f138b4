"""Who may do what: ownership checks and the hardening the reference lacks."""

from __future__ import annotations

import grpc
import pytest

from cmms.api.public.v1 import certificates_pb2, measurements_pb2, requisitions_pb2
from cmms.api.system.v1 import computation_participants_pb2 as participants_pb2
from cmms.api.system.v1 import computation_pb2, computations_pb2
from cmms.common.grpc.status import StatusError
from cmms.common.identity import Principal, acting_as
from cmms.kingdom.db.records import Capabilities
from cmms.testing.kingdom import MC, Flow, KingdomWorld

EDPS = ("edp1", "edp2", "edp3")
Measurement = measurements_pb2.Measurement
Requisition = requisitions_pb2.Requisition


async def _open_hmss_measurement(
    world: KingdomWorld,
) -> tuple[Flow, object, computation_pb2.Computation]:
    await world.set_capabilities(EDPS, Capabilities(hmss_supported=True))
    flow = Flow(world)
    request = world.measurement_request(EDPS)
    computation = await flow.computation_of(await flow.create(request))
    await flow.set_all_params(computation)
    return flow, request, await flow.refresh(computation)


async def test_an_edp_sees_only_its_own_requisitions(world: KingdomWorld) -> None:
    flow, request, _ = await _open_hmss_measurement(world)
    with acting_as(Principal.data_provider("edp1")):
        listed = await flow.servicers.requisitions.ListRequisitions(
            requisitions_pb2.ListRequisitionsRequest(parent="dataProviders/edp1"), None
        )
        assert [r.name.split("/")[1] for r in listed.requisitions] == ["edp1"]
        with pytest.raises(StatusError) as raised:
            await flow.servicers.requisitions.ListRequisitions(
                requisitions_pb2.ListRequisitionsRequest(parent="dataProviders/edp2"), None
            )
        assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    edp2_name = next(
        r.name
        for r in await flow.edp_requisitions(request)
        if r.name.startswith("dataProviders/edp2/")
    )
    with acting_as(Principal.data_provider("edp1")), pytest.raises(StatusError) as raised:
        await flow.servicers.requisitions.GetRequisition(
            requisitions_pb2.GetRequisitionRequest(name=edp2_name), None
        )
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED


async def test_list_requisitions_pages_and_filters(world: KingdomWorld) -> None:
    flow = Flow(world)
    for _ in range(3):
        request = world.measurement_request(["edp1"])
        await flow.create(request)
    seen: list[str] = []
    token = ""
    with acting_as(Principal.data_provider("edp1")):
        while True:
            page = await flow.servicers.requisitions.ListRequisitions(
                requisitions_pb2.ListRequisitionsRequest(
                    parent="dataProviders/edp1",
                    page_size=2,
                    page_token=token,
                    filter=requisitions_pb2.ListRequisitionsRequest.Filter(
                        states=[Requisition.UNFULFILLED]
                    ),
                ),
                None,
            )
            seen += [r.name for r in page.requisitions]
            token = page.next_page_token
            if not token:
                break
        fulfilled = await flow.servicers.requisitions.ListRequisitions(
            requisitions_pb2.ListRequisitionsRequest(
                parent="dataProviders/edp1",
                filter=requisitions_pb2.ListRequisitionsRequest.Filter(
                    states=[Requisition.FULFILLED]
                ),
            ),
            None,
        )
    assert len(seen) == len(set(seen)) == 3
    assert list(fulfilled.requisitions) == []


async def test_a_non_aggregator_cannot_set_the_result(world: KingdomWorld) -> None:
    flow, request, computation = await _open_hmss_measurement(world)
    await flow.fulfill_all(request, computation)  # type: ignore[arg-type]
    with pytest.raises(StatusError) as raised:
        await flow.set_result(computation, "worker1")
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    # Someone else's certificate is refused before anything else.
    with acting_as(Principal.duchy("worker1")), pytest.raises(StatusError) as raised:
        await flow.servicers.computations.SetComputationResult(
            computations_pb2.SetComputationResultRequest(
                name=computation.name,
                aggregator_certificate=world.certificate_names["aggregator"],
                encrypted_result=b"x",
                public_api_version="v1",
            ),
            None,
        )
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    done = await flow.set_result(computation, "aggregator", b"r")
    assert done.state == computation_pb2.Computation.SUCCEEDED
    # An identical retry returns the computation unchanged; a different one is refused.
    assert (await flow.set_result(computation, "aggregator", b"r")).state == done.state
    with pytest.raises(StatusError) as raised:
        await flow.set_result(computation, "aggregator", b"other")
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_the_result_needs_pending_computation(world: KingdomWorld) -> None:
    flow, _, computation = await _open_hmss_measurement(world)
    with pytest.raises(StatusError) as raised:
        await flow.set_result(computation, "aggregator")
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_only_the_assigned_duchy_fulfils_and_only_once(world: KingdomWorld) -> None:
    flow, request, computation = await _open_hmss_measurement(world)
    requisition = computation.requisitions[0]
    assigned = requisition.fulfilling_computation_participant.rsplit("/", 1)[1]
    other = "worker2" if assigned == "worker1" else "worker1"
    edp_requisitions = await flow.edp_requisitions(request)  # type: ignore[arg-type]
    requisition_id = requisition.name.rsplit("/", 1)[1]
    dp_id = next(r.name.split("/")[1] for r in edp_requisitions if r.name.endswith(requisition_id))
    nonce = request.nonce_of(dp_id)  # type: ignore[attr-defined]
    for duchy, code in (
        (other, grpc.StatusCode.PERMISSION_DENIED),
        ("aggregator", grpc.StatusCode.PERMISSION_DENIED),
    ):
        with pytest.raises(StatusError) as raised:
            await flow.fulfill(computation, requisition, duchy, nonce)
        assert raised.value.code == code
    with pytest.raises(StatusError) as raised:
        await flow.fulfill(computation, requisition, assigned, nonce + 1)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    fulfilled = await flow.fulfill(computation, requisition, assigned, nonce)
    assert fulfilled.state == computation_pb2.Requisition.FULFILLED
    assert fulfilled.nonce == nonce
    # The exact retry is accepted; a different nonce afterwards is not.
    assert (await flow.fulfill(computation, requisition, assigned, nonce)).nonce == nonce
    with pytest.raises(StatusError) as raised:
        await flow.fulfill(computation, requisition, other, nonce)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_participants_belong_to_their_duchy(world: KingdomWorld) -> None:
    flow = Flow(world)
    computation = await flow.computation_of(await flow.create(world.measurement_request(EDPS)))
    with acting_as(Principal.duchy("worker1")), pytest.raises(StatusError) as raised:
        await flow.servicers.participants.GetComputationParticipant(
            participants_pb2.GetComputationParticipantRequest(
                name=f"{computation.name}/participants/worker2"
            ),
            None,
        )
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    request = participants_pb2.SetParticipantRequisitionParamsRequest(
        name=f"{computation.name}/participants/worker1",
        requisition_params=world.requisition_params("worker2", "liquid_legions_v2"),
    )
    with acting_as(Principal.duchy("worker1")), pytest.raises(StatusError) as raised:
        await flow.servicers.participants.SetParticipantRequisitionParams(request, None)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with acting_as(Principal.data_provider("edp1")), pytest.raises(StatusError) as raised:
        await flow.servicers.computations.GetComputation(
            computations_pb2.GetComputationRequest(name=computation.name), None
        )
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED


async def _revoke(
    flow: Flow, owner: Principal, name: str, state: int
) -> certificates_pb2.Certificate:
    with acting_as(owner):
        return await flow.servicers.certificates.RevokeCertificate(
            certificates_pb2.RevokeCertificateRequest(name=name, revocation_state=state),
            None,  # type: ignore[arg-type]
        )


async def test_revoking_the_mc_certificate_fails_its_pending_measurements(
    world: KingdomWorld,
) -> None:
    flow = Flow(world)
    request = world.measurement_request(EDPS)
    measurement = await flow.create(request)
    computation = await flow.computation_of(measurement)
    await flow.set_all_params(computation)
    with pytest.raises(StatusError) as raised:
        await _revoke(
            flow,
            Principal.data_provider("edp1"),
            world.certificate_names[MC.id],
            certificates_pb2.Certificate.HOLD,
        )
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    held = await _revoke(
        flow, MC, world.certificate_names[MC.id], certificates_pb2.Certificate.HOLD
    )
    assert held.revocation_state == certificates_pb2.Certificate.HOLD
    failed = await flow.get_measurement(measurement.name)
    assert failed.state == Measurement.FAILED
    assert failed.failure.reason == Measurement.Failure.CERTIFICATE_REVOKED
    assert {r.state for r in await flow.edp_requisitions(request)} == {Requisition.WITHDRAWN}
    # A held certificate cannot create measurements; releasing the hold revives creation only.
    with pytest.raises(StatusError) as raised:
        await flow.create(world.measurement_request(EDPS))
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    with acting_as(MC):
        await flow.servicers.certificates.ReleaseCertificateHold(
            certificates_pb2.ReleaseCertificateHoldRequest(name=world.certificate_names[MC.id]),
            None,
        )
    assert (await flow.get_measurement(measurement.name)).state == Measurement.FAILED
    assert (
        await flow.create(world.measurement_request(EDPS))
    ).state == Measurement.AWAITING_REQUISITION_FULFILLMENT
    revoked = await _revoke(
        flow, MC, world.certificate_names[MC.id], certificates_pb2.Certificate.REVOKED
    )
    assert revoked.revocation_state == certificates_pb2.Certificate.REVOKED
    with pytest.raises(StatusError) as raised:
        await _revoke(flow, MC, world.certificate_names[MC.id], certificates_pb2.Certificate.HOLD)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_revoking_an_edp_certificate_spares_measurements_it_fulfilled(
    world: KingdomWorld,
) -> None:
    flow = Flow(world)
    open_request = world.measurement_request(["edp1", "edp2"])
    open_measurement = await flow.create(open_request)
    direct = world.measurement_request(["edp1"])
    direct_measurement = await flow.create(direct)
    (requisition,) = await flow.edp_requisitions(direct)
    with acting_as(Principal.data_provider("edp1")):
        await flow.servicers.requisitions.FulfillDirectRequisition(
            requisitions_pb2.FulfillDirectRequisitionRequest(
                name=requisition.name,
                nonce=direct.nonce_of("edp1"),
                encrypted_result=requisition.encrypted_requisition_spec,
            ),
            None,
        )
    await _revoke(
        flow,
        Principal.data_provider("edp1"),
        world.certificate_names["edp1"],
        certificates_pb2.Certificate.REVOKED,
    )
    assert (
        await flow.get_measurement(open_measurement.name)
    ).failure.reason == Measurement.Failure.CERTIFICATE_REVOKED
    assert (await flow.get_measurement(direct_measurement.name)).state == Measurement.SUCCEEDED


async def test_certificate_read_rules(world: KingdomWorld) -> None:
    flow = Flow(world)
    get = certificates_pb2.GetCertificateRequest
    with acting_as(Principal.data_provider("edp1")):
        assert (
            await flow.servicers.certificates.GetCertificate(
                get(name=world.certificate_names["mc1"]), None
            )
        ).x509_der
        assert (
            await flow.servicers.certificates.GetCertificate(
                get(name=world.certificate_names["worker1"]), None
            )
        ).x509_der
        with pytest.raises(StatusError) as raised:
            await flow.servicers.certificates.GetCertificate(
                get(name=world.certificate_names["edp2"]), None
            )
        assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    with acting_as(Principal.duchy("worker1")):
        assert (
            await flow.servicers.certificates.GetCertificate(
                get(name=world.certificate_names["edp2"]), None
            )
        ).x509_der
    with acting_as(MC), pytest.raises(StatusError) as raised:
        await flow.servicers.certificates.CreateCertificate(
            certificates_pb2.CreateCertificateRequest(
                parent="measurementConsumers/mc1",
                certificate=certificates_pb2.Certificate(
                    x509_der=world.pki.party(MC).cs_cert.read_bytes()
                ),
            ),
            None,
        )
    assert raised.value.code == grpc.StatusCode.ALREADY_EXISTS
