"""What every starter does the same way: identity and Kingdom facts, requisitions, DP checks.

Every validation failure is a `StarterError` (permanent), whose message names the offending
parameter, so the consumer sees why its measurement failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import DecodeError

from cmms.api.internal.duchy.v1 import (
    computation_details_pb2,
    computation_protocols_pb2,
    computations_service_pb2,
)
from cmms.api.public.v1 import common_pb2, measurement_spec_pb2
from cmms.api.system.v1 import computation_pb2
from cmms.duchy.herald.config import ProtocolsSetupConfig
from cmms.duchy.herald.errors import HeraldError
from cmms.duchy.herald.names import global_computation_id, participant_duchy_id, requisition_id
from cmms.protocols.measurement import MeasurementType, NoiseMechanism

Computation = computation_pb2.Computation
MeasurementSpec = measurement_spec_pb2.MeasurementSpec
Details = computation_details_pb2.ComputationDetails
CreateRequest = computations_service_pb2.CreateComputationRequest
SystemDpParams = computation_pb2.DifferentialPrivacyParams

# The public API version this duchy reads MeasurementSpecs in (docs/API.md).
PUBLIC_API_VERSION = "v1"
DEFAULT_BLOBS_BUCKET = "computation-blob-storage"


class StarterError(HeraldError):
    """The Kingdom computation cannot be run here as it is; the computation fails."""


@dataclass(frozen=True)
class DuchyContext:
    """What starters need to know about this duchy."""

    duchy_id: str
    setup: ProtocolsSetupConfig
    blobs_bucket: str = DEFAULT_BLOBS_BUCKET


class Starter(Protocol):
    async def creation_request(self, computation: Computation) -> CreateRequest: ...


def measurement_spec(computation: Computation) -> MeasurementSpec:
    if computation.public_api_version != PUBLIC_API_VERSION:
        raise StarterError(
            f"public API version {computation.public_api_version!r} is not supported "
            f"(expected {PUBLIC_API_VERSION!r})"
        )
    try:
        return MeasurementSpec.FromString(computation.measurement_spec)
    except DecodeError as error:
        raise StarterError(f"the measurement spec does not parse: {error}") from error


def measurement_type(
    spec: MeasurementSpec, allowed: Sequence[MeasurementType] = tuple(MeasurementType)
) -> MeasurementType:
    kind = spec.WhichOneof("measurement_type")
    found = {
        "reach": MeasurementType.REACH,
        "reach_and_frequency": MeasurementType.REACH_AND_FREQUENCY,
    }.get(kind or "")
    if found is None or found not in allowed:
        names = ", ".join(t.name for t in allowed)
        raise StarterError(f"measurement type {kind or 'unset'} is not supported (only {names})")
    return found


def maximum_frequency(spec: MeasurementSpec, kind: MeasurementType) -> int:
    """1 for reach; the spec's value for R&F, which must be above 1."""
    if kind is MeasurementType.REACH:
        return 1
    value = spec.reach_and_frequency.maximum_frequency
    if value <= 1:
        raise StarterError(f"maximum frequency must be greater than 1, got {value}")
    return value


def noise_mechanism(mechanism: int, allowed: frozenset[NoiseMechanism], protocol: str) -> int:
    try:
        named = NoiseMechanism(mechanism)
    except ValueError:
        raise StarterError(
            f"{protocol} noise mechanism is unset or unknown ({mechanism})"
        ) from None
    if named not in allowed:
        names = ", ".join(sorted(m.name for m in allowed))
        raise StarterError(
            f"{protocol} does not support noise mechanism {named.name} (only {names})"
        )
    return int(named)


def system_dp(params: common_pb2.DifferentialPrivacyParams) -> SystemDpParams:
    return SystemDpParams(epsilon=params.epsilon, delta=params.delta)


def reach_dp(spec: MeasurementSpec, kind: MeasurementType) -> SystemDpParams:
    if kind is MeasurementType.REACH:
        return system_dp(spec.reach.privacy_params)
    return system_dp(spec.reach_and_frequency.reach_privacy_params)


def frequency_dp(spec: MeasurementSpec) -> SystemDpParams:
    return system_dp(spec.reach_and_frequency.frequency_privacy_params)


def check_dp(params: SystemDpParams, what: str, minimum_epsilon: float) -> SystemDpParams:
    """`params` if usable: delta > 0 and epsilon at least `minimum_epsilon`."""
    if not params.delta > 0:
        raise StarterError(f"{what} DP delta must be greater than 0, got {params.delta}")
    if not params.epsilon >= minimum_epsilon:
        raise StarterError(
            f"{what} DP epsilon must be at least {minimum_epsilon}, got {params.epsilon}"
        )
    return params


def requisition_fingerprint(measurement_spec_bytes: bytes, requisition_spec_hash: bytes) -> bytes:
    """SHA-256(measurement spec bytes exactly as received ‖ requisition spec hash)."""
    return hashlib.sha256(measurement_spec_bytes + requisition_spec_hash).digest()


def requisition_key(
    computation: Computation, requisition: computation_pb2.Requisition
) -> computation_details_pb2.ExternalRequisitionKey:
    return computation_details_pb2.ExternalRequisitionKey(
        external_requisition_id=requisition_id(requisition.name),
        requisition_fingerprint=requisition_fingerprint(
            computation.measurement_spec, requisition.requisition_spec_hash
        ),
    )


def fill_requisition_details(
    details: computation_details_pb2.RequisitionDetails, requisition: computation_pb2.Requisition
) -> computation_details_pb2.RequisitionDetails:
    """Copy the Kingdom's facts (nonce hash, fulfilling duchy, nonce) over `details`."""
    details.nonce_hash = requisition.nonce_hash
    if requisition.fulfilling_computation_participant:
        details.external_fulfilling_duchy_id = participant_duchy_id(
            requisition.fulfilling_computation_participant
        )
    if requisition.nonce:
        details.nonce = requisition.nonce
    return details


def requisition_entries(
    computation: Computation,
) -> list[computation_details_pb2.RequisitionEntry]:
    return [
        computation_details_pb2.RequisitionEntry(
            key=requisition_key(computation, requisition),
            value=fill_requisition_details(
                computation_details_pb2.RequisitionDetails(), requisition
            ),
        )
        for requisition in computation.requisitions
    ]


def base_details(computation: Computation, spec: MeasurementSpec, duchy: DuchyContext) -> Details:
    """Blob prefix and Kingdom facts; the caller fills in the protocol."""
    gid = global_computation_id(computation.name)
    details = Details(blobs_storage_prefix=f"{duchy.blobs_bucket}/{duchy.duchy_id}/{gid}")
    kingdom = details.kingdom_computation
    kingdom.public_api_version = computation.public_api_version
    kingdom.measurement_spec = computation.measurement_spec
    kingdom.measurement_public_key.CopyFrom(spec.measurement_public_key)
    kingdom.participant_count = len(computation.computation_participants)
    return details


def creation_request(
    computation: Computation,
    protocol: int,
    details: Details,
    initial_stage: computation_protocols_pb2.ComputationStage | None = None,
) -> CreateRequest:
    request = CreateRequest(
        computation_type=protocol,  # type: ignore[arg-type]
        global_computation_id=global_computation_id(computation.name),
        computation_details=details,
        requisitions=requisition_entries(computation),
    )
    if initial_stage is not None:
        request.computation_stage.CopyFrom(initial_stage)
    return request
