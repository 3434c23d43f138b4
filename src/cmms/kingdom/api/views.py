"""Records -> public API messages. Stored signed bytes are wrapped, never re-serialized."""

from __future__ import annotations

from google.protobuf import any_pb2

from cmms.api.public.v1 import (
    certificates_pb2,
    common_pb2,
    crypto_pb2,
    data_providers_pb2,
    event_groups_pb2,
    measurement_consumers_pb2,
    measurement_spec_pb2,
    measurements_pb2,
    protocol_config_pb2,
    requisitions_pb2,
)
from cmms.api.system.v1 import computation_pb2
from cmms.kingdom import names
from cmms.kingdom.db.records import (
    CertificateRecord,
    DataProviderRecord,
    EventGroupRecord,
    MeasurementConsumerRecord,
    MeasurementSnapshot,
    MeasurementState,
    Protocol,
    RequisitionRecord,
    RequisitionState,
    RevocationState,
)
from cmms.kingdom.names import OwnerKind
from cmms.kingdom.timestamps import etag, to_proto

TYPE_URL_PREFIX = "type.googleapis.com/"
SIGNED_MESSAGE_TYPE_URL = TYPE_URL_PREFIX + crypto_pb2.SignedMessage.DESCRIPTOR.full_name
MEASUREMENT_SPEC_TYPE_URL = (
    TYPE_URL_PREFIX + measurement_spec_pb2.MeasurementSpec.DESCRIPTOR.full_name
)
ENCRYPTION_PUBLIC_KEY_TYPE_URL = (
    TYPE_URL_PREFIX + crypto_pb2.EncryptionPublicKey.DESCRIPTOR.full_name
)
EL_GAMAL_PUBLIC_KEY_TYPE_URL = TYPE_URL_PREFIX + crypto_pb2.ElGamalPublicKey.DESCRIPTOR.full_name

Measurement = measurements_pb2.Measurement
Requisition = requisitions_pb2.Requisition
Params = computation_pb2.ComputationParticipant.RequisitionParams

PUBLIC_MEASUREMENT_STATES = {
    MeasurementState.PENDING_REQUISITION_PARAMS: Measurement.AWAITING_REQUISITION_FULFILLMENT,
    MeasurementState.PENDING_REQUISITION_FULFILLMENT: Measurement.AWAITING_REQUISITION_FULFILLMENT,
    MeasurementState.PENDING_PARTICIPANT_CONFIRMATION: Measurement.COMPUTING,
    MeasurementState.PENDING_COMPUTATION: Measurement.COMPUTING,
    MeasurementState.SUCCEEDED: Measurement.SUCCEEDED,
    MeasurementState.FAILED: Measurement.FAILED,
    MeasurementState.CANCELLED: Measurement.CANCELLED,
}
INTERNAL_STATES_OF_PUBLIC = {
    public: frozenset(s for s, p in PUBLIC_MEASUREMENT_STATES.items() if p == public)
    for public in set(PUBLIC_MEASUREMENT_STATES.values())
}


def _certificate_name(record: CertificateRecord) -> str:
    return names.certificate_name(
        OwnerKind(record.owner_kind), record.owner_id, record.certificate_id
    )


def certificate_message(record: CertificateRecord) -> certificates_pb2.Certificate:
    state = {
        RevocationState.NONE: certificates_pb2.Certificate.REVOCATION_STATE_UNSPECIFIED,
        RevocationState.HOLD: certificates_pb2.Certificate.HOLD,
        RevocationState.REVOKED: certificates_pb2.Certificate.REVOKED,
    }[RevocationState(record.revocation_state)]
    return certificates_pb2.Certificate(
        name=_certificate_name(record),
        x509_der=record.x509_der,
        subject_key_identifier=record.subject_key_identifier,
        not_valid_before=to_proto(record.not_valid_before_us),
        not_valid_after=to_proto(record.not_valid_after_us),
        revocation_state=state,
    )


def measurement_consumer_message(
    record: MeasurementConsumerRecord, certificate: CertificateRecord | None
) -> measurement_consumers_pb2.MeasurementConsumer:
    message = measurement_consumers_pb2.MeasurementConsumer(
        name=names.measurement_consumer_name(record.measurement_consumer_id),
        display_name=record.display_name,
    )
    if certificate is not None:
        message.certificate = _certificate_name(certificate)
        message.certificate_der = certificate.x509_der
    if record.public_key:
        message.public_key.ParseFromString(record.public_key)
    return message


def data_provider_message(
    record: DataProviderRecord, certificate: CertificateRecord | None
) -> data_providers_pb2.DataProvider:
    caps = record.capabilities
    message = data_providers_pb2.DataProvider(
        name=names.data_provider_name(record.data_provider_id),
        display_name=record.display_name,
        required_duchies=[
            names.duchy_name(d.removeprefix("duchies/")) for d in record.required_duchies
        ],
        capabilities=data_providers_pb2.DataProvider.Capabilities(
            honest_majority_share_shuffle_supported=caps.hmss_supported,
            trus_tee_supported=caps.trustee_supported,
            noise_mechanism_none_supported=caps.noise_none_supported,
            noise_mechanism_deterministic_truncated_laplace_supported=caps.noise_dtl_supported,
        ),
    )
    if certificate is not None:
        message.certificate = _certificate_name(certificate)
        message.certificate_der = certificate.x509_der
    if record.public_key:
        message.public_key.ParseFromString(record.public_key)
    return message


def event_group_message(record: EventGroupRecord) -> event_groups_pb2.EventGroup:
    message = event_groups_pb2.EventGroup(
        name=names.event_group_name(record.data_provider_id, record.event_group_id),
        measurement_consumer=names.measurement_consumer_name(record.measurement_consumer_id),
        event_group_reference_id=record.event_group_reference_id,
        display_name=record.display_name,
        media_types=[event_groups_pb2.EventGroup.MediaType.Value(m) for m in record.media_types],
        create_time=to_proto(record.create_time_us),
    )
    if record.data_availability_start_us is not None:
        message.data_availability_interval.start_time.CopyFrom(
            to_proto(record.data_availability_start_us)
        )
    if record.data_availability_end_us is not None:
        message.data_availability_interval.end_time.CopyFrom(
            to_proto(record.data_availability_end_us)
        )
    return message


def _signed(type_url: str, value: bytes, signature: bytes, oid: str) -> crypto_pb2.SignedMessage:
    return crypto_pb2.SignedMessage(
        message=any_pb2.Any(type_url=type_url, value=value),
        signature=signature,
        signature_algorithm_oid=oid,
    )


def _name_of(snapshot: MeasurementSnapshot, certificate_id: int | None) -> str:
    certificate = snapshot.certificates.get(certificate_id or 0)
    return "" if certificate is None else _certificate_name(certificate)


def measurement_spec_message(snapshot: MeasurementSnapshot) -> crypto_pb2.SignedMessage:
    m = snapshot.measurement
    return _signed(
        MEASUREMENT_SPEC_TYPE_URL,
        m.measurement_spec,
        m.measurement_spec_signature,
        m.measurement_spec_signature_algorithm_oid,
    )


def _encrypted(ciphertext: bytes) -> crypto_pb2.EncryptedMessage:
    return crypto_pb2.EncryptedMessage(ciphertext=ciphertext, type_url=SIGNED_MESSAGE_TYPE_URL)


def measurement_message(snapshot: MeasurementSnapshot) -> Measurement:
    m = snapshot.measurement
    message = Measurement(
        name=names.measurement_name(m.measurement_consumer_id, m.measurement_id),
        measurement_consumer_certificate=_name_of(snapshot, m.measurement_consumer_certificate_id),
        measurement_spec=measurement_spec_message(snapshot),
        protocol_config=protocol_config_pb2.ProtocolConfig.FromString(m.protocol_config),
        state=PUBLIC_MEASUREMENT_STATES[m.measurement_state],
        measurement_reference_id=m.measurement_reference_id,
        create_time=to_proto(m.create_time_us),
        update_time=to_proto(m.update_time_us),
        etag=etag(m.update_time_us),
    )
    for requisition in snapshot.requisitions:
        entry = message.data_providers.add(
            key=names.data_provider_name(requisition.data_provider_id)
        )
        entry.value.data_provider_certificate = _name_of(
            snapshot, requisition.data_provider_certificate_id
        )
        entry.value.data_provider_public_key.ParseFromString(requisition.data_provider_public_key)
        entry.value.encrypted_requisition_spec.CopyFrom(
            _encrypted(requisition.encrypted_requisition_spec)
        )
        entry.value.nonce_hash = requisition.nonce_hash
    if m.measurement_state is MeasurementState.FAILED and m.failure_reason:
        message.failure.reason = Measurement.Failure.Reason.Value(m.failure_reason)
        message.failure.message = m.failure_message or ""
    if m.measurement_state is MeasurementState.SUCCEEDED:
        if m.protocol_kind is Protocol.DIRECT:
            for requisition in snapshot.requisitions:
                message.results.add(
                    certificate=_name_of(snapshot, requisition.direct_result_certificate_id),
                    encrypted_result=_encrypted(requisition.direct_encrypted_result or b""),
                )
        elif m.encrypted_result is not None:
            message.results.add(
                certificate=_name_of(snapshot, m.result_certificate_id),
                encrypted_result=_encrypted(m.encrypted_result),
            )
    return message


def _duchy_entries(
    snapshot: MeasurementSnapshot, record: RequisitionRecord
) -> list[Requisition.DuchyEntry]:
    protocol = snapshot.measurement.protocol_kind
    entries = []
    for participant in snapshot.participants:
        if (
            protocol is Protocol.HMSS
            and participant.duchy_id == snapshot.measurement.aggregator_duchy_id
        ):
            # The aggregator publishes no key; EDPs never send it anything.
            continue
        entry = Requisition.DuchyEntry(key=names.duchy_name(participant.duchy_id))
        entry.value.duchy_certificate = _name_of(snapshot, participant.duchy_certificate_id)
        params = (
            Params.FromString(participant.requisition_params)
            if participant.requisition_params
            else None
        )
        if protocol in (Protocol.LLV2, Protocol.REACH_ONLY_LLV2):
            target = (
                entry.value.liquid_legions_v2
                if protocol is Protocol.LLV2
                else entry.value.reach_only_liquid_legions_v2
            )
            target.SetInParent()
            if params is not None:
                ll = (
                    params.liquid_legions_v2
                    if protocol is Protocol.LLV2
                    else params.reach_only_liquid_legions_v2
                )
                target.el_gamal_public_key.CopyFrom(
                    _signed(
                        EL_GAMAL_PUBLIC_KEY_TYPE_URL,
                        ll.el_gamal_public_key,
                        ll.el_gamal_public_key_signature,
                        ll.el_gamal_public_key_signature_algorithm_oid,
                    )
                )
        elif protocol is Protocol.HMSS:
            entry.value.honest_majority_share_shuffle.SetInParent()
            if params is not None and participant.duchy_id != record.fulfilling_duchy_id:
                hmss = params.honest_majority_share_shuffle
                entry.value.honest_majority_share_shuffle.public_key.CopyFrom(
                    _signed(
                        ENCRYPTION_PUBLIC_KEY_TYPE_URL,
                        hmss.tink_public_key,
                        hmss.tink_public_key_signature,
                        hmss.tink_public_key_signature_algorithm_oid,
                    )
                )
        elif protocol is Protocol.TRUSTEE:
            entry.value.trus_tee.SetInParent()
        entries.append(entry)
    return entries


def requisition_message(snapshot: MeasurementSnapshot, record: RequisitionRecord) -> Requisition:
    m = snapshot.measurement
    state = (
        RequisitionState.UNFULFILLED
        if record.requisition_state is RequisitionState.PENDING_PARAMS
        else record.requisition_state
    )
    message = Requisition(
        name=names.requisition_name(record.data_provider_id, record.requisition_id),
        measurement=names.measurement_name(m.measurement_consumer_id, m.measurement_id),
        measurement_consumer_certificate=_name_of(snapshot, m.measurement_consumer_certificate_id),
        measurement_spec=measurement_spec_message(snapshot),
        protocol_config=protocol_config_pb2.ProtocolConfig.FromString(m.protocol_config),
        encrypted_requisition_spec=_encrypted(record.encrypted_requisition_spec),
        data_provider_certificate=_name_of(snapshot, record.data_provider_certificate_id),
        data_provider_public_key=crypto_pb2.EncryptionPublicKey.FromString(
            record.data_provider_public_key
        ),
        duchies=_duchy_entries(snapshot, record),
        state=Requisition.State.Value(state.value),
        measurement_state=PUBLIC_MEASUREMENT_STATES[m.measurement_state],
        update_time=to_proto(record.update_time_us),
        etag=etag(record.update_time_us),
    )
    if record.requisition_state is RequisitionState.FULFILLED and record.nonce_value is not None:
        message.nonce = record.nonce_value
    if record.refusal_justification:
        message.refusal.justification = Requisition.Refusal.Justification.Value(
            record.refusal_justification
        )
        message.refusal.message = record.refusal_message or ""
    if record.fulfillment_context:
        message.fulfillment_context.CopyFrom(
            common_pb2.FulfillmentContext.FromString(record.fulfillment_context)
        )
    return message
