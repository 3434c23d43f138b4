"""Records -> system API messages."""

from __future__ import annotations

import hashlib

from cmms.api.public.v1 import common_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.kingdom import names
from cmms.kingdom.db.records import (
    MeasurementSnapshot,
    MeasurementState,
    ParticipantRecord,
    ParticipantState,
    RequisitionRecord,
    RequisitionState,
)
from cmms.kingdom.timestamps import etag, to_proto

Computation = computation_pb2.Computation
Participant = computation_pb2.ComputationParticipant
SystemRequisition = computation_pb2.Requisition


def participant_message(
    snapshot: MeasurementSnapshot, participant: ParticipantRecord
) -> Participant:
    computation_id = snapshot.measurement.computation_id
    assert computation_id is not None
    message = Participant(
        name=names.participant_name(computation_id, participant.duchy_id),
        state=Participant.State.Value(participant.state),
        update_time=to_proto(participant.update_time_us),
        etag=etag(participant.update_time_us),
    )
    if participant.requisition_params is not None:
        params = Participant.RequisitionParams.FromString(participant.requisition_params)
        certificate = snapshot.certificates.get(participant.duchy_certificate_id or 0)
        if certificate is not None:
            params.duchy_certificate_der = certificate.x509_der
        message.requisition_params.CopyFrom(params)
    if participant.participant_state is ParticipantState.FAILED:
        failure = message.failure
        failure.participant_child_reference_id = participant.failure_child_reference_id or ""
        failure.error_message = participant.failure_message or ""
        if participant.failure_time_us is not None:
            failure.error_time.CopyFrom(to_proto(participant.failure_time_us))
        if participant.failure_stage_attempt:
            failure.stage_attempt.ParseFromString(participant.failure_stage_attempt)
    return message


def requisition_message(computation_id: int, record: RequisitionRecord) -> SystemRequisition:
    state = (
        RequisitionState.UNFULFILLED
        if record.requisition_state is RequisitionState.PENDING_PARAMS
        else record.requisition_state
    )
    message = SystemRequisition(
        name=names.system_requisition_name(computation_id, record.requisition_id),
        requisition_spec_hash=hashlib.sha256(record.encrypted_requisition_spec).digest(),
        nonce_hash=record.nonce_hash,
        state=SystemRequisition.State.Value(state.value),
    )
    if record.requisition_state is RequisitionState.FULFILLED and record.nonce_value is not None:
        message.nonce = record.nonce_value
    if record.fulfilling_duchy_id:
        message.fulfilling_computation_participant = names.participant_name(
            computation_id, record.fulfilling_duchy_id
        )
    if record.fulfillment_context:
        message.fulfillment_context.CopyFrom(
            common_pb2.FulfillmentContext.FromString(record.fulfillment_context)
        )
    return message


def computation_message(snapshot: MeasurementSnapshot) -> Computation:
    measurement = snapshot.measurement
    computation_id = measurement.computation_id
    assert computation_id is not None
    message = Computation(
        name=names.computation_name(computation_id),
        public_api_version=measurement.api_version,
        measurement_spec=measurement.measurement_spec,
        state=Computation.State.Value(measurement.state),
    )
    if (
        measurement.measurement_state is MeasurementState.SUCCEEDED
        and measurement.result_duchy_id
        and measurement.result_certificate_id is not None
    ):
        message.aggregator_certificate = names.certificate_name(
            names.OwnerKind.DUCHY, measurement.result_duchy_id, measurement.result_certificate_id
        )
        message.encrypted_result = measurement.encrypted_result or b""
    message.computation_participants.extend(
        participant_message(snapshot, p) for p in snapshot.participants
    )
    message.requisitions.extend(
        requisition_message(computation_id, r) for r in snapshot.requisitions
    )
    if measurement.duchy_protocol_config:
        message.mpc_protocol_config.ParseFromString(measurement.duchy_protocol_config)
    return message
