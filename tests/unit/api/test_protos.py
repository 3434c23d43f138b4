"""Contract checks on the .proto definitions: stage numbers, mirrored enums, streaming shapes."""

from __future__ import annotations

import base64

import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import EnumDescriptor, ServiceDescriptor

from cmms.api.internal.duchy.protocol.v1 import (
    hmss_pb2,
    llv2_pb2,
    reach_only_llv2_pb2,
    trustee_pb2,
)
from cmms.api.internal.duchy.v1 import (
    async_computation_control_service_pb2,
    computation_protocols_pb2,
    computation_stats_service_pb2,
    computations_service_pb2,
    continuation_tokens_service_pb2,
)
from cmms.api.public.v1 import (
    certificates_pb2,
    data_providers_pb2,
    event_groups_pb2,
    measurement_consumers_pb2,
    measurements_pb2,
    requisition_fulfillment_pb2,
    requisition_spec_pb2,
    requisitions_pb2,
)
from cmms.api.system.v1 import (
    computation_control_pb2,
    computation_log_entries_pb2,
    computation_participants_pb2,
    computation_pb2,
    computations_pb2,
)
from cmms.api.system.v1 import requisitions_pb2 as system_requisitions_pb2

LLV2_STAGES = [
    "STAGE_UNSPECIFIED",
    "INITIALIZATION_PHASE",
    "WAIT_REQUISITIONS_AND_KEY_SET",
    "CONFIRMATION_PHASE",
    "WAIT_TO_START",
    "WAIT_SETUP_PHASE_INPUTS",
    "SETUP_PHASE",
    "WAIT_EXECUTION_PHASE_ONE_INPUTS",
    "EXECUTION_PHASE_ONE",
    "WAIT_EXECUTION_PHASE_TWO_INPUTS",
    "EXECUTION_PHASE_TWO",
    "WAIT_EXECUTION_PHASE_THREE_INPUTS",
    "EXECUTION_PHASE_THREE",
    "COMPLETE",
]
RO_LLV2_STAGES = [*LLV2_STAGES[:7], "WAIT_EXECUTION_PHASE_INPUTS", "EXECUTION_PHASE", "COMPLETE"]
HMSS_STAGES = [
    "STAGE_UNSPECIFIED",
    "INITIALIZED",
    "WAIT_TO_START",
    "WAIT_ON_SHUFFLE_INPUT_PHASE_ONE",
    "SETUP_PHASE",
    "WAIT_ON_SHUFFLE_INPUT_PHASE_TWO",
    "WAIT_ON_AGGREGATION_INPUT",
    "SHUFFLE_PHASE",
    "AGGREGATION_PHASE",
    "COMPLETE",
]
TRUSTEE_STAGES = ["STAGE_UNSPECIFIED", "INITIALIZED", "WAIT_TO_START", "COMPUTING", "COMPLETE"]


def _numbered(enum: EnumDescriptor) -> list[str]:
    by_number = {v.number: v.name for v in enum.values}
    assert sorted(by_number) == list(range(len(by_number)))
    return [by_number[i] for i in range(len(by_number))]


@pytest.mark.parametrize(
    ("enum", "expected"),
    [
        (llv2_pb2.LiquidLegionsV2.Stage.DESCRIPTOR, LLV2_STAGES),
        (reach_only_llv2_pb2.ReachOnlyLiquidLegionsV2.Stage.DESCRIPTOR, RO_LLV2_STAGES),
        (hmss_pb2.HonestMajorityShareShuffle.Stage.DESCRIPTOR, HMSS_STAGES),
        (trustee_pb2.TrusTee.Stage.DESCRIPTOR, TRUSTEE_STAGES),
    ],
)
def test_internal_stage_numbers_follow_the_specs(enum: EnumDescriptor, expected: list[str]) -> None:
    assert _numbered(enum) == expected


@pytest.mark.parametrize(
    ("system_enum", "internal_enum"),
    [
        (
            computation_control_pb2.ComputationStage.LiquidLegionsV2.Stage.DESCRIPTOR,
            llv2_pb2.LiquidLegionsV2.Stage.DESCRIPTOR,
        ),
        (
            computation_control_pb2.ComputationStage.ReachOnlyLiquidLegionsV2.Stage.DESCRIPTOR,
            reach_only_llv2_pb2.ReachOnlyLiquidLegionsV2.Stage.DESCRIPTOR,
        ),
        (
            computation_control_pb2.ComputationStage.HonestMajorityShareShuffle.Stage.DESCRIPTOR,
            hmss_pb2.HonestMajorityShareShuffle.Stage.DESCRIPTOR,
        ),
    ],
)
def test_system_stage_enums_mirror_internal_ones(
    system_enum: EnumDescriptor, internal_enum: EnumDescriptor
) -> None:
    assert _numbered(system_enum) == _numbered(internal_enum)


def test_computation_type_numbers() -> None:
    ct = computation_protocols_pb2.ComputationType
    assert ct.Value("LIQUID_LEGIONS_V2") == 1
    assert ct.Value("REACH_ONLY_LIQUID_LEGIONS_V2") == 2
    assert ct.Value("HONEST_MAJORITY_SHARE_SHUFFLE") == 3
    assert ct.Value("TRUS_TEE") == 4


def test_computation_states() -> None:
    assert _numbered(computation_pb2.Computation.State.DESCRIPTOR) == [
        "STATE_UNSPECIFIED",
        "PENDING_REQUISITION_PARAMS",
        "PENDING_REQUISITION_FULFILLMENT",
        "PENDING_PARTICIPANT_CONFIRMATION",
        "PENDING_COMPUTATION",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
    ]


def test_computation_stage_oneof_covers_every_protocol() -> None:
    fields = computation_protocols_pb2.ComputationStage.DESCRIPTOR.oneofs_by_name["stage"].fields
    assert [f.name for f in fields] == [
        "liquid_legions_v2",
        "reach_only_liquid_legions_v2",
        "honest_majority_share_shuffle",
        "trus_tee",
    ]


def test_nonces_are_unsigned_64_bit() -> None:
    big = 2**64 - 1
    for message in (
        requisition_spec_pb2.RequisitionSpec(nonce=big),
        requisitions_pb2.Requisition(nonce=big),
        requisition_fulfillment_pb2.FulfillRequisitionRequest.Header(nonce=big),
        system_requisitions_pb2.FulfillRequisitionRequest(nonce=big),
        computation_pb2.Requisition(nonce=big),
    ):
        assert type(message).FromString(message.SerializeToString()).nonce == big


def test_continuation_token_round_trips_as_unpadded_base64url() -> None:
    token = computations_pb2.StreamActiveComputationsContinuationToken(
        last_seen_update_time=timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=1000),
        last_seen_external_computation_id=2**63 + 5,
    )
    text = base64.urlsafe_b64encode(token.SerializeToString()).rstrip(b"=").decode()
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    assert computations_pb2.StreamActiveComputationsContinuationToken.FromString(raw) == token


def _methods(service: ServiceDescriptor) -> dict[str, tuple[bool, bool]]:
    return {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}


UNARY = (False, False)


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (
            measurement_consumers_pb2.DESCRIPTOR.services_by_name["MeasurementConsumers"],
            {"GetMeasurementConsumer": UNARY},
        ),
        (
            data_providers_pb2.DESCRIPTOR.services_by_name["DataProviders"],
            {"GetDataProvider": UNARY, "ReplaceDataProviderCapabilities": UNARY},
        ),
        (
            certificates_pb2.DESCRIPTOR.services_by_name["Certificates"],
            {
                "GetCertificate": UNARY,
                "CreateCertificate": UNARY,
                "RevokeCertificate": UNARY,
                "ReleaseCertificateHold": UNARY,
                "ListCertificates": UNARY,
            },
        ),
        (
            event_groups_pb2.DESCRIPTOR.services_by_name["EventGroups"],
            {"CreateEventGroup": UNARY, "GetEventGroup": UNARY, "ListEventGroups": UNARY},
        ),
        (
            measurements_pb2.DESCRIPTOR.services_by_name["Measurements"],
            {
                "CreateMeasurement": UNARY,
                "GetMeasurement": UNARY,
                "CancelMeasurement": UNARY,
                "ListMeasurements": UNARY,
            },
        ),
        (
            requisitions_pb2.DESCRIPTOR.services_by_name["Requisitions"],
            {
                "ListRequisitions": UNARY,
                "GetRequisition": UNARY,
                "RefuseRequisition": UNARY,
                "FulfillDirectRequisition": UNARY,
            },
        ),
        (
            requisition_fulfillment_pb2.DESCRIPTOR.services_by_name["RequisitionFulfillment"],
            {"FulfillRequisition": (True, False)},
        ),
        (
            computations_pb2.DESCRIPTOR.services_by_name["Computations"],
            {
                "GetComputation": UNARY,
                "StreamActiveComputations": (False, True),
                "SetComputationResult": UNARY,
            },
        ),
        (
            computation_participants_pb2.DESCRIPTOR.services_by_name["ComputationParticipants"],
            {
                "GetComputationParticipant": UNARY,
                "SetParticipantRequisitionParams": UNARY,
                "ConfirmComputationParticipant": UNARY,
                "FailComputationParticipant": UNARY,
            },
        ),
        (
            computation_log_entries_pb2.DESCRIPTOR.services_by_name["ComputationLogEntries"],
            {"CreateComputationLogEntry": UNARY},
        ),
        (
            system_requisitions_pb2.DESCRIPTOR.services_by_name["Requisitions"],
            {"FulfillRequisition": UNARY},
        ),
        (
            computation_control_pb2.DESCRIPTOR.services_by_name["ComputationControl"],
            {"AdvanceComputation": (True, False), "GetComputationStage": UNARY},
        ),
        (
            computations_service_pb2.DESCRIPTOR.services_by_name["Computations"],
            dict.fromkeys(
                [
                    "CreateComputation",
                    "GetComputationToken",
                    "UpdateComputationDetails",
                    "AdvanceComputationStage",
                    "FinishComputation",
                    "ClaimWork",
                    "AwaitWork",
                    "RecordOutputBlobPath",
                    "EnqueueComputation",
                    "RecordRequisitionFulfillment",
                    "DeleteComputation",
                    "PurgeComputations",
                    "GetComputationIds",
                ],
                UNARY,
            ),
        ),
        (
            computation_stats_service_pb2.DESCRIPTOR.services_by_name["ComputationStats"],
            {"CreateComputationStat": UNARY},
        ),
        (
            continuation_tokens_service_pb2.DESCRIPTOR.services_by_name["ContinuationTokens"],
            {"GetContinuationToken": UNARY, "SetContinuationToken": UNARY},
        ),
        (
            async_computation_control_service_pb2.DESCRIPTOR.services_by_name[
                "AsyncComputationControl"
            ],
            {"AdvanceComputation": UNARY, "GetOutputBlobMetadata": UNARY},
        ),
    ],
)
def test_services_have_the_agreed_rpcs(
    service: ServiceDescriptor, expected: dict[str, tuple[bool, bool]]
) -> None:
    assert _methods(service) == expected
