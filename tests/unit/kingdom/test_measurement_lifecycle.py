"""State machines of measurements, requisitions and participants, per protocol path."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from cmms.api.public.v1 import measurements_pb2, requisitions_pb2
from cmms.api.system.v1 import computation_participants_pb2 as participants_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.common.grpc.status import StatusError
from cmms.common.identity import Principal, acting_as
from cmms.kingdom.db.records import Capabilities
from cmms.kingdom.ids import decode_external_id
from cmms.kingdom.jobs.ttl import expire_once
from cmms.kingdom.names import measurement_name
from cmms.testing.kingdom import MC, Flow, KingdomWorld, kingdom_test_config

Computation = computation_pb2.Computation
Participant = computation_pb2.ComputationParticipant
Measurement = measurements_pb2.Measurement
Requisition = requisitions_pb2.Requisition
EDPS = ("edp1", "edp2", "edp3")


def states(computation: Computation) -> list[int]:
    return [p.state for p in computation.computation_participants]


async def test_llv2_path_goes_through_confirmation(world: KingdomWorld) -> None:
    flow = Flow(world)
    request = world.measurement_request(EDPS)
    measurement = await flow.create(request)
    assert measurement.protocol_config.WhichOneof("protocol") == "liquid_legions_v2"
    assert measurement.state == Measurement.AWAITING_REQUISITION_FULFILLMENT
    computation = await flow.computation_of(measurement)
    assert computation.state == Computation.PENDING_REQUISITION_PARAMS
    assert [p.name.rsplit("/", 1)[1] for p in computation.computation_participants] == [
        "aggregator",
        "worker1",
        "worker2",
    ]
    # Requisitions stay hidden from EDPs until every duchy has set its params.
    assert await flow.edp_requisitions(request) == []

    await flow.set_params(computation, "aggregator")
    await flow.set_params(computation, "worker1")
    computation = await flow.refresh(computation)
    assert computation.state == Computation.PENDING_REQUISITION_PARAMS
    await flow.set_params(computation, "worker2")
    computation = await flow.refresh(computation)
    assert computation.state == Computation.PENDING_REQUISITION_FULFILLMENT
    assert set(states(computation)) == {Participant.REQUISITION_PARAMS_SET}

    edp_view = await flow.edp_requisitions(request)
    assert len(edp_view) == 3
    assert {r.state for r in edp_view} == {Requisition.UNFULFILLED}
    assert all(len(r.duchies) == 3 for r in edp_view)
    assert all(
        d.value.liquid_legions_v2.el_gamal_public_key.signature for r in edp_view for d in r.duchies
    )

    await flow.fulfill_all(request, computation)
    computation = await flow.refresh(computation)
    assert computation.state == Computation.PENDING_PARTICIPANT_CONFIRMATION
    assert all(
        r.nonce != 0 and r.fulfilling_computation_participant for r in computation.requisitions
    )

    await flow.confirm_all(computation)
    computation = await flow.refresh(computation)
    assert computation.state == Computation.PENDING_COMPUTATION
    assert set(states(computation)) == {Participant.READY}

    await flow.set_result(computation, "aggregator", b"ciphertext")
    done = await flow.get_measurement(measurement.name)
    assert done.state == Measurement.SUCCEEDED
    assert len(done.results) == 1
    assert done.results[0].encrypted_result.ciphertext == b"ciphertext"
    assert done.results[0].certificate == world.certificate_names["aggregator"]
    # The MC's signed bytes come back exactly as sent.
    assert done.measurement_spec == request.request.measurement.measurement_spec


@pytest.mark.parametrize("protocol", ["hmss", "trustee"])
async def test_hmss_and_trustee_skip_confirmation(
    kingdom_database_url: str, dev_pki: object, protocol: str
) -> None:
    config = kingdom_test_config(trustee__enabled=protocol == "trustee")
    world = await KingdomWorld.open(kingdom_database_url, dev_pki, config=config)  # type: ignore[arg-type]
    try:
        await world.set_capabilities(
            EDPS, Capabilities(hmss_supported=True, trustee_supported=protocol == "trustee")
        )
        flow = Flow(world)
        request = world.measurement_request(EDPS)
        measurement = await flow.create(request)
        expected = "honest_majority_share_shuffle" if protocol == "hmss" else "trus_tee"
        assert measurement.protocol_config.WhichOneof("protocol") == expected
        computation = await flow.computation_of(measurement)
        duchies = [p.name.rsplit("/", 1)[1] for p in computation.computation_participants]
        assert duchies == (
            ["aggregator", "worker1", "worker2"] if protocol == "hmss" else ["aggregator"]
        )
        for requisition in computation.requisitions:
            requisition_id = decode_external_id(requisition.name.rsplit("/", 1)[1])
            assigned = requisition.fulfilling_computation_participant.rsplit("/", 1)[1]
            if protocol == "hmss":
                assert assigned == ["worker1", "worker2"][requisition_id % 2]
            else:
                assert assigned == "aggregator"

        await flow.set_all_params(computation)
        computation = await flow.refresh(computation)
        assert computation.state == Computation.PENDING_REQUISITION_FULFILLMENT
        assert set(states(computation)) == {Participant.READY}
        edp_view = await flow.edp_requisitions(request)
        if protocol == "hmss":
            for requisition in edp_view:
                assert len(requisition.duchies) == 2
                keyed = [
                    d
                    for d in requisition.duchies
                    if d.value.honest_majority_share_shuffle.HasField("public_key")
                ]
                assert len(keyed) == 1
        else:
            assert all(
                len(r.duchies) == 1 and r.duchies[0].value.HasField("trus_tee") for r in edp_view
            )

        await flow.fulfill_all(request, computation)
        computation = await flow.refresh(computation)
        assert computation.state == Computation.PENDING_COMPUTATION
        await flow.set_result(computation, "aggregator")
        assert (await flow.get_measurement(measurement.name)).state == Measurement.SUCCEEDED
    finally:
        await world.close()


async def test_direct_single_edp(world: KingdomWorld) -> None:
    flow = Flow(world)
    request = world.measurement_request(["edp1"])
    measurement = await flow.create(request)
    assert measurement.protocol_config.WhichOneof("protocol") == "direct"
    (requisition,) = await flow.edp_requisitions(request)
    assert requisition.duchies == []
    with acting_as(Principal.data_provider("edp1")):
        response = await flow.servicers.requisitions.FulfillDirectRequisition(
            requisitions_pb2.FulfillDirectRequisitionRequest(
                name=requisition.name,
                nonce=request.nonce_of("edp1"),
                encrypted_result=requisition.encrypted_requisition_spec.__class__(
                    ciphertext=b"direct result",
                    type_url=requisition.encrypted_requisition_spec.type_url,
                ),
                etag=requisition.etag,
            ),
            None,
        )
    assert response.state == Requisition.FULFILLED
    done = await flow.get_measurement(measurement.name)
    assert done.state == Measurement.SUCCEEDED
    assert [r.encrypted_result.ciphertext for r in done.results] == [b"direct result"]
    assert done.results[0].certificate == world.certificate_names["edp1"]


async def test_refusal_fails_measurement_and_withdraws_the_others(world: KingdomWorld) -> None:
    flow = Flow(world)
    request = world.measurement_request(EDPS)
    measurement = await flow.create(request)
    computation = await flow.computation_of(measurement)
    await flow.set_all_params(computation)
    edp1 = next(
        r for r in await flow.edp_requisitions(request) if r.name.startswith("dataProviders/edp1/")
    )
    with acting_as(Principal.data_provider("edp1")):
        refused = await flow.servicers.requisitions.RefuseRequisition(
            requisitions_pb2.RefuseRequisitionRequest(
                name=edp1.name,
                refusal=Requisition.Refusal(
                    justification=Requisition.Refusal.DECLINED, message="no"
                ),
                etag=edp1.etag,
            ),
            None,
        )
    assert refused.state == Requisition.REFUSED
    failed = await flow.get_measurement(measurement.name)
    assert failed.state == Measurement.FAILED
    assert failed.failure.reason == Measurement.Failure.REQUISITION_REFUSED
    others = [r for r in await flow.edp_requisitions(request) if r.name != edp1.name]
    assert {r.state for r in others} == {Requisition.WITHDRAWN}


async def test_participant_failure_fails_measurement_then_failed_precondition(
    world: KingdomWorld,
) -> None:
    flow = Flow(world)
    request = world.measurement_request(EDPS)
    computation = await flow.computation_of(await flow.create(request))
    fail = participants_pb2.FailComputationParticipantRequest(
        name=f"{computation.name}/participants/worker1",
        failure=Participant.Failure(
            participant_child_reference_id="herald-1", error_message="delta must be > 0"
        ),
    )
    with acting_as(Principal.duchy("worker1")):
        failed = await flow.servicers.participants.FailComputationParticipant(fail, None)
    assert failed.state == Participant.FAILED
    assert failed.failure.error_message == "delta must be > 0"
    computation = await flow.refresh(computation)
    assert computation.state == Computation.FAILED
    assert {r.state for r in computation.requisitions} == {computation_pb2.Requisition.WITHDRAWN}
    snapshot = await world.repositories.computations.get(
        decode_external_id(computation.name.split("/")[1])
    )
    record = snapshot.measurement
    public = await flow.get_measurement(
        measurement_name(record.measurement_consumer_id, record.measurement_id)
    )
    assert public.failure.reason == Measurement.Failure.COMPUTATION_PARTICIPANT_FAILED
    assert public.failure.message == "Computation Participant failed. delta must be > 0"
    fail.name = f"{computation.name}/participants/worker2"
    with acting_as(Principal.duchy("worker2")), pytest.raises(StatusError) as raised:
        await flow.servicers.participants.FailComputationParticipant(fail, None)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_cancel_withdraws_and_a_second_cancel_is_refused(world: KingdomWorld) -> None:
    flow = Flow(world)
    request = world.measurement_request(EDPS)
    measurement = await flow.create(request)
    computation = await flow.computation_of(measurement)
    await flow.set_all_params(computation)
    cancel = measurements_pb2.CancelMeasurementRequest(name=measurement.name)
    with acting_as(MC):
        cancelled = await flow.servicers.measurements.CancelMeasurement(cancel, None)
        assert cancelled.state == Measurement.CANCELLED
        with pytest.raises(StatusError) as raised:
            await flow.servicers.measurements.CancelMeasurement(cancel, None)
    assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert {r.state for r in await flow.edp_requisitions(request)} == {Requisition.WITHDRAWN}


async def test_ttl_job_cancels_only_expired_pending_measurements(world: KingdomWorld) -> None:
    flow = Flow(world)
    old = await flow.create(world.measurement_request(EDPS))
    world.advance(timedelta(hours=2))
    young = await flow.create(world.measurement_request(EDPS))
    cancelled = await expire_once(
        world.repositories.measurements, timedelta(hours=1), clock=world.clock
    )
    assert len(cancelled) == 1
    assert (await flow.get_measurement(old.name)).state == Measurement.CANCELLED
    assert (
        await flow.get_measurement(young.name)
    ).state == Measurement.AWAITING_REQUISITION_FULFILLMENT
    assert (
        await expire_once(world.repositories.measurements, timedelta(hours=1), clock=world.clock)
        == []
    )


async def test_create_is_idempotent_per_request_id(world: KingdomWorld) -> None:
    flow = Flow(world)
    request = world.measurement_request(EDPS, request_id="req-1")
    first = await flow.create(request)
    again = await flow.create(request)
    assert again.name == first.name
    other = await flow.create(world.measurement_request(EDPS, request_id="req-2"))
    assert other.name != first.name
    with acting_as(MC):
        listed = await flow.servicers.measurements.ListMeasurements(
            measurements_pb2.ListMeasurementsRequest(parent="measurementConsumers/mc1"), None
        )
    assert sorted(m.name for m in listed.measurements) == sorted({first.name, other.name})


async def test_set_params_checks_etag_and_state(world: KingdomWorld) -> None:
    flow = Flow(world)
    computation = await flow.computation_of(await flow.create(world.measurement_request(EDPS)))
    request = participants_pb2.SetParticipantRequisitionParamsRequest(
        name=f"{computation.name}/participants/worker1",
        requisition_params=world.requisition_params("worker1", "liquid_legions_v2"),
        etag='W/"stale"',
    )
    with acting_as(Principal.duchy("worker1")):
        with pytest.raises(StatusError) as raised:
            await flow.servicers.participants.SetParticipantRequisitionParams(request, None)
        assert raised.value.code == grpc.StatusCode.ABORTED
        current = await flow.servicers.participants.GetComputationParticipant(
            participants_pb2.GetComputationParticipantRequest(name=request.name), None
        )
        request.etag = current.etag
        updated = await flow.servicers.participants.SetParticipantRequisitionParams(request, None)
        assert updated.state == Participant.REQUISITION_PARAMS_SET
        assert updated.requisition_params.duchy_certificate_der
        assert (
            updated.requisition_params.liquid_legions_v2
            == request.requisition_params.liquid_legions_v2
        )
        request.etag = ""
        with pytest.raises(StatusError) as raised:
            await flow.servicers.participants.SetParticipantRequisitionParams(request, None)
        assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION


async def test_duplicate_nonce_hashes_and_bad_sampling_are_invalid(world: KingdomWorld) -> None:
    flow = Flow(world)
    wrapping = world.measurement_request(EDPS, sampling=(0.7, 0.5))
    with pytest.raises(StatusError) as raised:
        await flow.create(wrapping)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    request = world.measurement_request(EDPS)
    request.request.measurement.data_providers[1].value.nonce_hash = b"x" * 32
    with pytest.raises(StatusError) as raised:
        await flow.create(request)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_concurrent_last_ones_in_make_each_transition_exactly_once(
    world: KingdomWorld,
) -> None:
    flow = Flow(world)
    request = world.measurement_request(EDPS)
    computation = await flow.computation_of(await flow.create(request))
    duchies = [p.name.rsplit("/", 1)[1] for p in computation.computation_participants]
    await asyncio.gather(*(flow.set_params(computation, d) for d in duchies))
    computation = await flow.refresh(computation)
    assert computation.state == Computation.PENDING_REQUISITION_FULFILLMENT
    requisitions = await flow.edp_requisitions(request)
    first = duchies[0]

    async def fulfil(system: computation_pb2.Requisition) -> None:
        requisition_id = system.name.rsplit("/", 1)[1]
        dp_id = next(r.name.split("/")[1] for r in requisitions if r.name.endswith(requisition_id))
        await flow.fulfill(computation, system, first, request.nonce_of(dp_id))

    await asyncio.gather(*(fulfil(r) for r in computation.requisitions))
    await asyncio.gather(*(flow.confirm(computation, d) for d in duchies))
    computation = await flow.refresh(computation)
    assert computation.state == Computation.PENDING_COMPUTATION
    entries = await world.log_entries_of(computation.name)
    transitions = [e.message for e in entries if e.message.startswith("measurement state")]
    assert transitions == [
        "measurement state PENDING_REQUISITION_PARAMS -> PENDING_REQUISITION_FULFILLMENT",
        "measurement state PENDING_REQUISITION_FULFILLMENT -> PENDING_PARTICIPANT_CONFIRMATION",
        "measurement state PENDING_PARTICIPANT_CONFIRMATION -> PENDING_COMPUTATION",
    ]


@pytest.mark.parametrize(("modulus", "accepted"), [(31, False), (32, True)])
async def test_hmss_ring_modulus_must_hold_the_combined_frequency(
    kingdom_database_url: str, dev_pki: object, modulus: int, accepted: bool
) -> None:
    # Three EDPs at maximum frequency 10 combine to at most 30; with the sentinel, q > 31.
    config = kingdom_test_config(hmss__reach_and_frequency_ring_modulus=modulus)
    world = await KingdomWorld.open(kingdom_database_url, dev_pki, config=config)  # type: ignore[arg-type]
    try:
        await world.set_capabilities(EDPS, Capabilities(hmss_supported=True))
        flow = Flow(world)
        request = world.measurement_request(EDPS)
        if accepted:
            measurement = await flow.create(request)
            config_used = measurement.protocol_config.honest_majority_share_shuffle
            assert config_used.ring_modulus == modulus
            return
        with pytest.raises(StatusError) as raised:
            await flow.create(request)
        assert raised.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert "ring modulus 31" in raised.value.message
        assert "must exceed 31" in raised.value.message
    finally:
        await world.close()
