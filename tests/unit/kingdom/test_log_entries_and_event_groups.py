from __future__ import annotations

import grpc
import pytest

from cmms.api.public.v1 import certificates_pb2, event_groups_pb2, measurements_pb2
from cmms.api.system.v1 import computation_log_entries_pb2 as log_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.common.grpc.status import StatusError
from cmms.common.identity import Principal, acting_as
from cmms.testing.kingdom import MC, Flow, KingdomWorld

EDPS = ("edp1", "edp2", "edp3")
Entry = log_pb2.ComputationLogEntry


async def test_log_entries_accept_only_transient_errors(world: KingdomWorld) -> None:
    flow = Flow(world)
    computation = await flow.computation_of(await flow.create(world.measurement_request(EDPS)))
    parent = f"{computation.name}/participants/worker1"
    create = flow.servicers.log_entries.CreateComputationLogEntry
    with acting_as(Principal.duchy("worker1")):
        created = await create(
            log_pb2.CreateComputationLogEntryRequest(
                parent=parent,
                computation_log_entry=Entry(
                    log_message="retrying",
                    participant_child_reference_id="mill-7",
                    error_details=Entry.ErrorDetails(type=Entry.ErrorDetails.TRANSIENT),
                ),
            ),
            None,
        )
        assert created.name.startswith(f"{parent}/logEntries/")
        for error_type in (Entry.ErrorDetails.PERMANENT, Entry.ErrorDetails.TYPE_UNSPECIFIED):
            with pytest.raises(StatusError) as raised:
                await create(
                    log_pb2.CreateComputationLogEntryRequest(
                        parent=parent,
                        computation_log_entry=Entry(
                            log_message="x", error_details=Entry.ErrorDetails(type=error_type)
                        ),
                    ),
                    None,
                )
            assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with acting_as(Principal.duchy("worker2")), pytest.raises(StatusError) as raised:
        await create(
            log_pb2.CreateComputationLogEntryRequest(parent=parent, computation_log_entry=Entry()),
            None,
        )
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    entries = await world.log_entries_of(computation.name)
    stored = [e.message for e in entries if e.duchy_id == "worker1"]
    assert stored == ["retrying"]
    assert (
        await flow.refresh(computation)
    ).state == computation_pb2.Computation.PENDING_REQUISITION_PARAMS


async def test_event_groups_are_created_by_the_edp_and_listed_for_the_mc(
    world: KingdomWorld,
) -> None:
    servicer = world.servicers.event_groups
    with acting_as(Principal.data_provider("edp1")):
        request = event_groups_pb2.CreateEventGroupRequest(
            parent="dataProviders/edp1",
            event_group=event_groups_pb2.EventGroup(
                measurement_consumer="measurementConsumers/mc1",
                event_group_reference_id="sim-edp1",
                media_types=[event_groups_pb2.EventGroup.VIDEO],
            ),
            request_id="once",
        )
        created = await servicer.CreateEventGroup(request, None)
        assert (await servicer.CreateEventGroup(request, None)).name == created.name
    with acting_as(Principal.data_provider("edp2")), pytest.raises(StatusError) as raised:
        await servicer.CreateEventGroup(request, None)
    assert raised.value.code == grpc.StatusCode.PERMISSION_DENIED
    with acting_as(MC):
        listed = await servicer.ListEventGroups(
            event_groups_pb2.ListEventGroupsRequest(parent="measurementConsumers/mc1"), None
        )
        fetched = await servicer.GetEventGroup(
            event_groups_pb2.GetEventGroupRequest(name=created.name), None
        )
    assert [g.event_group_reference_id for g in listed.event_groups] == ["sim-edp1"]
    assert fetched.media_types == [event_groups_pb2.EventGroup.VIDEO]


async def test_revoking_a_duchy_certificate_fails_llv2_before_confirmation(
    world: KingdomWorld,
) -> None:
    flow = Flow(world)
    request = world.measurement_request(EDPS)
    measurement = await flow.create(request)
    computation = await flow.computation_of(measurement)
    await flow.set_params(computation, "worker1")
    with acting_as(Principal.duchy("worker1")):
        await flow.servicers.certificates.RevokeCertificate(
            certificates_pb2.RevokeCertificateRequest(
                name=world.certificate_names["worker1"],
                revocation_state=certificates_pb2.Certificate.REVOKED,
            ),
            None,
        )
    failed = await flow.get_measurement(measurement.name)
    assert failed.state == measurements_pb2.Measurement.FAILED
    assert failed.failure.reason == measurements_pb2.Measurement.Failure.CERTIFICATE_REVOKED
